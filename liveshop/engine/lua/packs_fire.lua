-- packs_fire.lua: start the room's queued pack offers and groups whose time has come
-- (swept by every process; only an entry still queued and due is started, so two
-- sweepers never start one twice).
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua (a group takes its shelf), then
-- KEYS[11] price  KEYS[12] live offers  KEYS[13] bands  KEYS[14] queued
-- KEYS[15] queued_due  KEYS[16] the session's offers list
-- ARGV[4] offer key prefix  ARGV[5] offer id prefix  ARGV[6] group id prefix (this call's)
--
-- Reply: the number of entries settled (started, or skipped with the reason in the
-- entry: not_live, unknown_sku, busy, short_stock, short, out_of_band).

local ts = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[15], '-inf', ts, 'LIMIT', 0, 20)
local K = {room = O.room, price = KEYS[11], stock = O.stock, offers = KEYS[12], seq = O.seq,
  history = O.history, bands = KEYS[13], session_offers = KEYS[16], channel = O.channel,
  offer_prefix = ARGV[4]}
local room = redis.call('HMGET', O.room, 'live', 'session_id')
for i, qid in ipairs(due) do
  redis.call('ZREM', KEYS[15], qid)
  local raw = redis.call('HGET', KEYS[14], qid)
  if raw then
    local q = cjson.decode(raw)
    if q.status == 'queued' then
      if room[1] ~= '1' or room[2] ~= q.session_id then
        q.status, q.reason = 'skipped', 'not_live'
      elseif q.kind == 'group' then
        local group_id = ARGV[6] .. jint(i)
        local res = start_group(group_id, q.sku, q.price, q.metric, q.threshold,
          tonumber(q.duration_ms), tonumber(q.cap), q.per_user_limit, KEYS[11], KEYS[13], ts)
        if res[1] == 'ok' then
          q.status, q.group_id = 'started', group_id
        else
          q.status, q.reason = 'skipped', res[1]
        end
      else
        local offer_id = ARGV[5] .. jint(i)
        local res = start_offer(K, offer_id, q.sku, q.price, tonumber(q.qty),
          tonumber(q.duration_ms), q.per_user_limit, ts)
        if res[1] == 'ok' then
          q.status, q.offer_id = 'started', offer_id
        else
          q.status, q.reason = 'skipped', res[1]
        end
      end
      q.settled_at = jint(ts)
      redis.call('HSET', KEYS[14], qid, cjson.encode(q))
    end
  end
end
return #due
