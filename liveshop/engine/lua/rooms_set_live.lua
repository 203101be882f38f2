-- rooms_set_live.lua: open or close a broadcast session (场次).
--
-- KEYS[1] room hash  KEYS[2] seq  KEYS[3] history  KEYS[4] stats hash
-- KEYS[5] buyers set KEYS[6] audience set  KEYS[7] live offers hash
-- KEYS[8] minutes hash  KEYS[9] session offers list  KEYS[10] hints log  KEYS[11] groups
-- KEYS[12] outbox (the live.started / live.ended webhooks)  KEYS[13] reservations set
-- ARGV[1] 'go' or 'end'   ARGV[2] new session id (go)   ARGV[3] title (go)
-- ARGV[4] channel         ARGV[5] offer key prefix   ARGV[6] group key prefix
--
-- go:  {'ok', session_id, title, started_at} | {'already', session_id, title, started_at}
-- end: {'ok', session_id, title, started_at, ended_at, peak, buyers, audience, {stats...},
--       {minute, viewers, ...}, {offer json...}, {hint json...}, {{group_id, fields...}...}}
--      | {'not_live'}
-- The end reply carries what the post-live review keeps of the session (read in the same
-- step as the close, so a go-live right after cannot reset it first).
-- Going live resets the session's totals; ending closes every live offer.

local ts = now_ms()
local r = redis.call('HMGET', KEYS[1], 'live', 'session_id', 'title', 'started_at', 'peak')
if ARGV[1] == 'go' then
  if r[1] == '1' then
    return {'already', r[2], r[3] or '', r[4] or '0'}
  end
  open_session({room = KEYS[1], seq = KEYS[2], history = KEYS[3], stats = KEYS[4],
    buyers = KEYS[5], audience = KEYS[6], minutes = KEYS[8], session_offers = KEYS[9],
    hints_log = KEYS[10], outbox = KEYS[12], reservations = KEYS[13], channel = ARGV[4]},
    ARGV[2], ARGV[3], ts)
  return {'ok', ARGV[2], ARGV[3], jint(ts)}
end

if r[1] ~= '1' then
  return {'not_live'}
end
for _, offer_id in ipairs(redis.call('HKEYS', KEYS[7])) do
  close_offer(KEYS[7], ARGV[5], offer_id, 'ended', KEYS[2], KEYS[3], ARGV[4], ts)
end
redis.call('HSET', KEYS[1], 'live', '0', 'ended_at', jint(ts))
redis.call('XADD', KEYS[12], '*', 'kind', 'live', 'event', 'live.ended', 'session_id', r[2],
  'at', jint(ts), 'orders', redis.call('HGET', KEYS[4], 'orders') or '0')
emit(KEYS[2], KEYS[3], ARGV[4], '-', '{"type":"live","live":false,"session_id":' .. jstr(r[2]), ts)
local offers = {}
for _, offer_id in ipairs(redis.call('LRANGE', KEYS[9], 0, -1)) do
  offers[#offers + 1] = offer_body(ARGV[5] .. offer_id, offer_id) .. '}'
end
local groups = {}
local started = tonumber(r[4] or '0')
local ids = redis.call('HKEYS', KEYS[11])
for _, id in ipairs(ids) do
  local created = redis.call('HGET', ARGV[6] .. id, 'created_at')
  if created and tonumber(created) >= started then
    local g = redis.call('HGETALL', ARGV[6] .. id)
    table.insert(g, 1, id)
    groups[#groups + 1] = g
  end
end
return {'ok', r[2], r[3] or '', r[4] or '0', jint(ts), r[5] or '0',
  redis.call('SCARD', KEYS[5]), redis.call('SCARD', KEYS[6]), redis.call('HGETALL', KEYS[4]),
  redis.call('HGETALL', KEYS[8]), offers, redis.call('LRANGE', KEYS[10], 0, -1), groups}
