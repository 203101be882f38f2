-- chain_end.lua: a cross-store deal's end, guarded: at its ends_at (ARGV[1] 'clock':
-- only if still running and now >= ends_at: failed below threshold, else its joins are
-- over) or HQ's cancel (ARGV[1] 'cancel': only an open one).
--
-- KEYS[1] the group hash
-- Reply: the status after it, or '' when nothing changed.

local ts = now_ms()
local g = redis.call('HMGET', KEYS[1], 'status', 'ends_at', 'closed_at')
if not g[1] or g[3] then
  return ''
end
if ARGV[1] == 'cancel' then
  if g[1] ~= 'open' then
    return ''
  end
  redis.call('HSET', KEYS[1], 'status', 'cancelled')
elseif ts < tonumber(g[2]) then
  return ''
elseif g[1] == 'open' then
  redis.call('HSET', KEYS[1], 'status', 'failed')
end
redis.call('HSET', KEYS[1], 'closed_at', jint(ts), 'dirty', '1')
return redis.call('HGET', KEYS[1], 'status')
