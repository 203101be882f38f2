-- polls_start.lua: open a poll in the room and put it on the stream.
--
-- KEYS[1] the room's polls hash (poll_id -> ends_at)  KEYS[2] the poll's hash
-- KEYS[3] seq  KEYS[4] history
-- ARGV[1] poll_id  ARGV[2] question  ARGV[3] options (JSON array)  ARGV[4] n options
-- ARGV[5] duration_s  ARGV[6] channel  ARGV[7] the live session's id ('' when not live)
-- ARGV[8] the room's poll key prefix (<prefix>poll:)
-- Reply: ends_at. The poll hash: question, options, n, ends_at, status, session, c0..c<n-1>,
-- dirty ('1' when a vote has not been shown yet), voter:<user> -> option.

local now = now_ms()
local ends_at = now + tonumber(ARGV[5]) * 1000
redis.call('HSET', KEYS[2], 'question', ARGV[2], 'options', ARGV[3], 'n', ARGV[4],
  'ends_at', ends_at, 'status', 'open', 'dirty', '0', 'session', ARGV[7])
for i = 0, tonumber(ARGV[4]) - 1 do
  redis.call('HSET', KEYS[2], 'c' .. i, 0)
end
-- The room's hash lists the polls of the last day only (every welcome reads each one):
-- older ones leave it and their hash lives a week more (poll_results has them by then).
local listed = redis.call('HGETALL', KEYS[1])
for i = 1, #listed, 2 do
  if tonumber(listed[i + 1]) < now - LISTED_MS then
    redis.call('HDEL', KEYS[1], listed[i])
    redis.call('EXPIRE', ARGV[8] .. listed[i], RETIRED_S)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ends_at)
emit(KEYS[3], KEYS[4], ARGV[6], 'poll:' .. ARGV[1], poll_body(KEYS[2], ARGV[1]), now)
return ends_at
