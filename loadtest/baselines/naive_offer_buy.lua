-- naive_offer_buy.lua: one tap of the naive peer (loadtest/baselines/naive_peer.py), with
-- the purchase semantics of liveshop's flash-offer buy (liveshop/engine/lua/inventory_buy.lua)
-- and none of its rooms, sessions, pickup-code registry, held units or room stream.
--
-- KEYS[1] stock hash (sku -> units left)  KEYS[2] price hash (sku -> price)
-- KEYS[3] outbox stream  KEYS[4] the offer's hash (sku, price, qty, left, per_user_limit,
-- starts_at, ends_at, status)  KEYS[5] the offer's buyers hash (user -> units bought)
-- KEYS[6] the answer of (user, request_id): the idempotency record
-- ARGV[1] user  ARGV[2] request_id  ARGV[3] sku  ARGV[4] qty  ARGV[5] offer_id or ''
-- ARGV[6] order_id for a new order  ARGV[7] pickup code  ARGV[8] idempotency ttl (s)
--
-- Reply: {kind, answer, stock_left, offer_left, offer_status}. kind 'new', or 'repeat' (the
-- first answer of (user, request_id) again; nothing changed). answer: the order_ack's
-- fields as JSON, {status: 'accepted', order_id, pickup_code, sku, qty, unit_price} or
-- {status: 'rejected', reason, sku, qty}. stock_left and offer_left: -1 unless accepted;
-- offer_status: the offer's status after this call ('' without an offer). Checks come
-- before every write: a rejection writes only its idempotency record.

local cached = redis.call('GET', KEYS[6])
if cached then
  return {'repeat', cached, -1, -1, ''}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user, sku, qty, offer_id = ARGV[1], ARGV[3], tonumber(ARGV[4]), ARGV[5]

local function answer(a, left, offer_left, status)
  local json = cjson.encode(a)
  redis.call('SET', KEYS[6], json, 'EX', ARGV[8])
  return {'new', json, left, offer_left, status or ''}
end

local function reject(reason, status)
  return answer({status = 'rejected', reason = reason, sku = sku, qty = qty}, -1, -1, status)
end

local price = redis.call('HGET', KEYS[2], sku)
if not price then
  return reject('unknown_sku')
end
local o
if offer_id ~= '' then
  o = redis.call('HMGET', KEYS[4], 'sku', 'price', 'left', 'per_user_limit', 'starts_at',
    'ends_at', 'status')
  if o[1] ~= sku then
    return reject('offer_ended')  -- no such offer, or an offer on another SKU
  end
  if o[7] == 'sold_out' then
    return reject('sold_out', o[7])
  end
  if o[7] ~= 'live' or now < tonumber(o[5]) then
    return reject('offer_ended', o[7])
  end
  if now >= tonumber(o[6]) then  -- the clock, not a timer, ends an offer
    redis.call('HSET', KEYS[4], 'status', 'ended')
    return reject('offer_ended', 'ended')
  end
  if tonumber(o[3]) < qty then
    return reject('sold_out', o[7])
  end
  if tonumber(redis.call('HGET', KEYS[5], user) or '0') + qty > tonumber(o[4]) then
    return reject('limit_exceeded', o[7])
  end
  price = o[2]
end
if tonumber(redis.call('HGET', KEYS[1], sku) or '0') < qty then
  return reject('sold_out', o and o[7])
end

local left = redis.call('HINCRBY', KEYS[1], sku, -qty)
local offer_left, status = -1, nil
if o then
  offer_left = redis.call('HINCRBY', KEYS[4], 'left', -qty)
  redis.call('HINCRBY', KEYS[5], user, qty)
  status = 'live'
  if offer_left == 0 then
    status = 'sold_out'
    redis.call('HSET', KEYS[4], 'status', status)
  end
end
redis.call('XADD', KEYS[3], '*', 'order_id', ARGV[6], 'user_id', user, 'request_id', ARGV[2],
  'sku', sku, 'qty', ARGV[4], 'unit_price', price, 'offer_id', offer_id,
  'created_at', string.format('%d', now))
return answer({status = 'accepted', order_id = ARGV[6], pickup_code = ARGV[7], sku = sku,
  qty = qty, unit_price = tonumber(price)}, left, offer_left, status)
