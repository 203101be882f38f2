-- draws_start.lua: open a lucky draw and put it (with its commitment, not its seed) on
-- the room stream.
--
-- KEYS[1] the room's draws hash  KEYS[2] the draw's hash  KEYS[3] seq  KEYS[4] history
-- ARGV[1] draw_id  ARGV[2] prize  ARGV[3] winners  ARGV[4] duration_s  ARGV[5] eligible
-- ARGV[6] seed (hex, kept secret until drawn)  ARGV[7] commitment  ARGV[8] channel
-- ARGV[9] the live session's id ('' when not live): `chatted` means in this session
-- ARGV[10] the room's draw key prefix (<prefix>draw:)
-- Reply: ends_at

local now = now_ms()
local ends_at = now + tonumber(ARGV[4]) * 1000
redis.call('HSET', KEYS[2], 'prize', ARGV[2], 'winners_count', ARGV[3], 'entrants', 0,
  'ends_at', ends_at, 'status', 'open', 'eligible', ARGV[5], 'seed', ARGV[6],
  'commitment', ARGV[7], 'session', ARGV[9], 'dirty', '0')
-- The room's hash lists the draws of the last day only (every welcome reads each one):
-- older ones leave it and their keys live a week more (draw_results has them by then).
local listed = redis.call('HGETALL', KEYS[1])
for i = 1, #listed, 2 do
  if tonumber(listed[i + 1]) < now - LISTED_MS then
    redis.call('HDEL', KEYS[1], listed[i])
    redis.call('EXPIRE', ARGV[10] .. listed[i], RETIRED_S)
    redis.call('EXPIRE', ARGV[10] .. listed[i] .. ':entrants', RETIRED_S)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ends_at)
emit(KEYS[3], KEYS[4], ARGV[8], 'draw:' .. ARGV[1], draw_body(KEYS[2], ARGV[1]), now)
return ends_at
