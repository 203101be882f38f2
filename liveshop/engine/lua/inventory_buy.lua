-- inventory_buy.lua: one purchase, atomically: checks, decrement, order into the outbox.
--
-- KEYS[1] room hash         KEYS[2] price hash       KEYS[3] stock hash
-- KEYS[4] sold hash         KEYS[5] idempotency key  KEYS[6] outbox stream
-- KEYS[7] seq counter       KEYS[8] history stream   KEYS[9] stats hash
-- KEYS[10] buyers set       KEYS[11] live offers hash
-- ARGV[1] room_id   ARGV[2] user_id   ARGV[3] request_id   ARGV[4] sku   ARGV[5] qty
-- ARGV[6] offer_id or ''    ARGV[7] order_id for a new order   ARGV[8] pickup code
-- ARGV[9] idempotency ttl (s)   ARGV[10] channel   ARGV[11] offer key prefix
--
-- Reply: {kind, answer} where kind is 'new' or 'repeat' and answer is the JSON
-- {"s": status, "r": reason, "o": order_id, "p": pickup, "u": unit_price, "k": sku,
--  "q": qty}. A repeat of (user, request_id) returns the first answer, changes nothing.
-- Checks come before every write, so a rejection writes only its idempotency record.

local cached = redis.call('GET', KEYS[5])
if cached then
  return {'repeat', cached}
end

local ts = now_ms()
local user, sku, qty, offer_id = ARGV[2], ARGV[4], tonumber(ARGV[5]), ARGV[6]

local function answer(status, reason, order_id, pickup, unit_price)
  local a = cjson.encode({s = status, r = reason, o = order_id, p = pickup, u = unit_price, k = sku, q = qty})
  redis.call('SET', KEYS[5], a, 'EX', ARGV[9])
  return {'new', a}
end
local function reject(reason)
  return answer('rejected', reason, '', '', 0)
end

local room = redis.call('HMGET', KEYS[1], 'live', 'session_id')
if room[1] ~= '1' then
  return reject('not_live')
end
local price = redis.call('HGET', KEYS[2], sku)
if not price then
  return reject('unknown_sku')
end
local unit_price = tonumber(price)

local offer_key, offer_left
if offer_id ~= '' then
  offer_key = ARGV[11] .. offer_id
  local o = redis.call('HMGET', offer_key, 'sku', 'price', 'left', 'per_user_limit', 'starts_at', 'ends_at', 'status')
  if o[1] ~= sku then
    return reject('offer_ended')  -- no such offer, or an offer on another SKU
  end
  if o[7] == 'sold_out' then
    return reject('sold_out')
  end
  if o[7] ~= 'live' or ts < tonumber(o[5]) then
    return reject('offer_ended')
  end
  if ts >= tonumber(o[6]) then
    -- The clock, not a timer, decides the end: close it now and tell the room.
    close_offer(KEYS[11], ARGV[11], offer_id, 'ended', KEYS[7], KEYS[8], ARGV[10], ts)
    return reject('offer_ended')
  end
  if tonumber(o[3]) < qty then
    return reject('sold_out')
  end
  local bought = tonumber(redis.call('HGET', offer_key .. ':buyers', user) or '0')
  if bought + qty > tonumber(o[4]) then
    return reject('limit_exceeded')
  end
  unit_price = tonumber(o[2])
  offer_left = tonumber(o[3]) - qty
end

local left = tonumber(redis.call('HGET', KEYS[3], sku) or '0')
if left < qty then
  return reject('sold_out')
end

-- Accept: the order enters the outbox first; from here on it is never lost.
local order_id, pickup = ARGV[7], ARGV[8]
local session_id = room[2] or ''
redis.call('XADD', KEYS[6], '*',
  'order_id', order_id, 'room_id', ARGV[1], 'session_id', session_id, 'user_id', user,
  'sku', sku, 'qty', jint(qty), 'unit_price', jint(unit_price), 'offer_id', offer_id,
  'pickup_code', pickup, 'status', 'accepted', 'created_at', jint(ts))
left = left - qty
redis.call('HSET', KEYS[3], sku, jint(left))
redis.call('HINCRBY', KEYS[4], sku, qty)
local gmv = unit_price * qty
redis.call('HINCRBY', KEYS[9], 'orders', 1)
redis.call('HINCRBY', KEYS[9], 'units', qty)
redis.call('HINCRBY', KEYS[9], 'gmv', gmv)
redis.call('HINCRBY', KEYS[9], 'u:' .. sku, qty)
redis.call('HINCRBY', KEYS[9], 'g:' .. sku, gmv)
redis.call('HSET', KEYS[9], 'last_order_at', jint(ts))
redis.call('SADD', KEYS[10], user)
local reply = answer('accepted', '', order_id, pickup, unit_price)

emit(KEYS[7], KEYS[8], ARGV[10], 'stock:' .. sku, stock_body(sku, left), ts)
if offer_key then
  redis.call('HSET', offer_key, 'left', jint(offer_left))
  redis.call('HINCRBY', offer_key .. ':buyers', user, qty)
  if offer_left == 0 then
    close_offer(KEYS[11], ARGV[11], offer_id, 'sold_out', KEYS[7], KEYS[8], ARGV[10], ts)
  else
    emit(KEYS[7], KEYS[8], ARGV[10], 'offer:' .. offer_id, offer_body(offer_key, offer_id), ts)
  end
end
return reply
