-- chain_end.lua: a cross-store deal's end, guarded: at its ends_at (ARGV[1] 'clock':
-- only if still running and now >= ends_at: failed below threshold, else its joins are
-- over) or HQ's cancel (ARGV[1] 'cancel': only an open one).
--
-- KEYS[1] the group hash
-- Reply: the status after it, or '' when nothing changed.

local ts = now_ms()
if ARGV[1] == 'clock' then
  return close_chain_if_due(KEYS[1], ts) and redis.call('HGET', KEYS[1], 'status') or ''
end
local g = redis.call('HMGET', KEYS[1], 'status', 'closed_at')
if g[1] ~= 'open' or g[2] then
  return ''
end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'closed_at', jint(ts), 'dirty', '1')
return 'cancelled'
