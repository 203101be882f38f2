-- polls_tick.lua: every process's sweep, for each open poll: show the counts if votes
-- came in since they were last shown, and close the poll once its time is up (only if
-- still open and now >= ends_at: of the processes that tick at once, one closes it).
--
-- KEYS[1] the poll's hash  KEYS[2] seq  KEYS[3] history
-- ARGV[1] poll_id  ARGV[2] channel
-- Reply: 'open' | 'closed' (now, or already: the caller drops it from OPEN_POLLS)
--        | 'missing' (not written yet, or gone)

local p = redis.call('HMGET', KEYS[1], 'status', 'ends_at', 'dirty')
if not p[1] then
  return 'missing'
end
if p[1] ~= 'open' then
  return 'closed'
end
local now = now_ms()
if now >= tonumber(p[2]) then
  redis.call('HSET', KEYS[1], 'status', 'closed', 'dirty', '0', 'closed_at', now)
  emit(KEYS[2], KEYS[3], ARGV[2], 'poll:' .. ARGV[1], poll_body(KEYS[1], ARGV[1]), now)
  return 'closed'
end
if p[3] == '1' then
  redis.call('HSET', KEYS[1], 'dirty', '0')
  emit(KEYS[2], KEYS[3], ARGV[2], 'poll:' .. ARGV[1], poll_body(KEYS[1], ARGV[1]), now)
end
return 'open'
