-- packs_fire.lua: start the room's queued pack offers whose time has come (swept by every
-- process; only an entry still queued and due is started, so two sweepers never start
-- one twice).
--
-- KEYS[1] room  KEYS[2] price  KEYS[3] stock  KEYS[4] live offers  KEYS[5] seq
-- KEYS[6] history  KEYS[7] bands  KEYS[8] queued  KEYS[9] queued_due
-- KEYS[10] the session's offers list
-- ARGV[1] channel  ARGV[2] offer key prefix  ARGV[3] offer id prefix (this call's)
--
-- Reply: the number of entries settled (started or skipped, each with its reason in the
-- entry: not_live, unknown_sku, busy, short_stock, out_of_band).

local ts = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', ts, 'LIMIT', 0, 20)
local K = {room = KEYS[1], price = KEYS[2], stock = KEYS[3], offers = KEYS[4], seq = KEYS[5],
  history = KEYS[6], bands = KEYS[7], session_offers = KEYS[10], channel = ARGV[1],
  offer_prefix = ARGV[2]}
local room = redis.call('HMGET', KEYS[1], 'live', 'session_id')
for i, qid in ipairs(due) do
  redis.call('ZREM', KEYS[9], qid)
  local raw = redis.call('HGET', KEYS[8], qid)
  if raw then
    local q = cjson.decode(raw)
    if q.status == 'queued' then
      if room[1] ~= '1' or room[2] ~= q.session_id then
        q.status, q.reason = 'skipped', 'not_live'
      else
        local offer_id = ARGV[3] .. jint(i)
        local res = start_offer(K, offer_id, q.sku, q.price, tonumber(q.qty),
          tonumber(q.duration_ms), q.per_user_limit, ts)
        if res[1] == 'ok' then
          q.status, q.offer_id = 'started', offer_id
        else
          q.status, q.reason = 'skipped', res[1]
        end
      end
      q.settled_at = jint(ts)
      redis.call('HSET', KEYS[8], qid, cjson.encode(q))
    end
  end
end
return #due
