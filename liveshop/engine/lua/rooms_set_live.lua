-- rooms_set_live.lua: open or close a broadcast session (场次).
--
-- KEYS[1] room hash  KEYS[2] seq  KEYS[3] history  KEYS[4] stats hash
-- KEYS[5] buyers set KEYS[6] audience set  KEYS[7] live offers hash
-- ARGV[1] 'go' or 'end'   ARGV[2] new session id (go)   ARGV[3] title (go)
-- ARGV[4] channel         ARGV[5] offer key prefix
--
-- go:  {'ok', session_id, title, started_at} | {'already', session_id, title, started_at}
-- end: {'ok', session_id, title, started_at, ended_at, peak, buyers, audience, stats...}
--      | {'not_live'}
-- Going live resets the session's totals; ending closes every live offer.

local ts = now_ms()
local r = redis.call('HMGET', KEYS[1], 'live', 'session_id', 'title', 'started_at', 'peak')
if ARGV[1] == 'go' then
  if r[1] == '1' then
    return {'already', r[2], r[3] or '', r[4] or '0'}
  end
  open_session({room = KEYS[1], seq = KEYS[2], history = KEYS[3], stats = KEYS[4],
    buyers = KEYS[5], audience = KEYS[6], channel = ARGV[4]}, ARGV[2], ARGV[3], ts)
  return {'ok', ARGV[2], ARGV[3], jint(ts)}
end

if r[1] ~= '1' then
  return {'not_live'}
end
for _, offer_id in ipairs(redis.call('HKEYS', KEYS[7])) do
  close_offer(KEYS[7], ARGV[5], offer_id, 'ended', KEYS[2], KEYS[3], ARGV[4], ts)
end
redis.call('HSET', KEYS[1], 'live', '0', 'ended_at', jint(ts))
emit(KEYS[2], KEYS[3], ARGV[4], '-', '{"type":"live","live":false,"session_id":' .. jstr(r[2]), ts)
return {'ok', r[2], r[3] or '', r[4] or '0', jint(ts), r[5] or '0',
  redis.call('SCARD', KEYS[5]), redis.call('SCARD', KEYS[6]), redis.call('HGETALL', KEYS[4])}
