-- inventory_buy.lua: one purchase, atomically: checks, decrement (or hold), the order
-- created and appended to the outbox, room and buyer messages.
--
-- KEYS[1..10] and ARGV[1..3]: the order keys of _orders.lua, then
-- KEYS[11] price hash  KEYS[12] the v1 idempotency key (read only: answers recorded
-- before orders had their own key)  KEYS[13] stats hash  KEYS[14] buyers set
-- KEYS[15] live offers hash  KEYS[16] the order's key: its id is made from (user,
-- request_id), so the order is its own idempotency record (a rejection is recorded there,
-- for the idempotency ttl)
-- ARGV[4] user_id  ARGV[5] request_id  ARGV[6] sku  ARGV[7] qty  ARGV[8] offer_id or ''
-- ARGV[9] order_id for a new order  ARGV[10] pickup code candidates 'c1,c2,...'
-- ARGV[11] idempotency ttl (s)  ARGV[12] offer key prefix  ARGV[13] the order's QR text
-- ARGV[14] 'pickup' or 'delivery'  ARGV[15] address  ARGV[16] lat  ARGV[17] lng
-- ARGV[18] phone  ARGV[19] most unpaid orders per user
-- ARGV[20..24] a joint room's routed purchase ('' otherwise): the joint room, the route's
-- rule and distance (m), the joint room's unit price, its session id. Routed, the store
-- need not be live, the price and session are the joint room's, and the store's own
-- session totals are left alone (the joint room counts the order: lua/joint_route.lua).
--
-- Reply: {kind, answer} where kind is 'new', 'repeat' or 'retry' (every code candidate
-- is taken by an open order: nothing changed, call again with others) and answer the
-- JSON {"s": status, "r": reason, "o": order_id, "p": pickup, "u": unit_price, "k": sku,
--  "q": qty, "t": state, "b": pay_by}. A repeat of (user, request_id) returns the first
-- answer (rebuilt from the order for an accepted one), changes nothing. Checks come
-- before every write, so a rejection writes only its record. In a `payment: required` room the units go left -> held and the
-- order waits for payment until pay_by (a due item 'pay:<id>' for the sweep).

local function first_answer(o)
  local state = o.pay_by and 'awaiting_payment' or 'accepted'
  return '{"s":"accepted","r":"","o":' .. jstr(o.order_id) .. ',"p":' .. jstr(o.pickup_code or '')
    .. ',"u":' .. o.unit_price .. ',"k":' .. jstr(o.sku) .. ',"q":' .. o.qty
    .. ',"t":' .. jstr(state) .. ',"b":' .. (o.pay_by or '0') .. '}'
end

local cached = redis.call('GET', KEYS[16]) or redis.call('GET', KEYS[12])
if cached then
  if string.sub(cached, 1, 5) == '{"s":' then
    return {'repeat', cached}  -- a rejection (or a v1 answer)
  end
  return {'repeat', first_answer(cjson.decode(cached))}
end

local ts = now_ms()
local user, sku, qty, offer_id = ARGV[4], ARGV[6], tonumber(ARGV[7]), ARGV[8]

local function reject(reason)
  local a = '{"s":"rejected","r":' .. jstr(reason) .. ',"o":"","p":"","u":0,"k":' .. jstr(sku)
    .. ',"q":' .. jint(qty) .. ',"t":"","b":0}'
  redis.call('SET', KEYS[16], a, 'EX', ARGV[11])
  return {'new', a}
end

local room = redis.call('HMGET', O.room, 'live', 'session_id', 'payment', 'hold_s', 'offer_hold_s')
local via = ARGV[20] or ''
if via ~= '' then
  room[2] = ARGV[24]
elseif room[1] ~= '1' then
  return reject('not_live')
end
local price = redis.call('HGET', KEYS[11], sku)
if not price then
  return reject('unknown_sku')
end
local unit_price = tonumber(via ~= '' and ARGV[23] or price)

local offer_key, offer_left
if offer_id ~= '' then
  offer_key = ARGV[12] .. offer_id
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
    close_offer(KEYS[15], ARGV[12], offer_id, 'ended', O.seq, O.history, O.channel, ts)
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

local left = tonumber(redis.call('HGET', O.stock, sku) or '0')
if left < qty then
  return reject('sold_out')
end
local holds = room[3] == 'required'
if holds and redis.call('SCARD', user_key(user, 'unpaid')) >= tonumber(ARGV[19]) then
  return reject('too_many_unpaid')
end
local order_id, pickup = ARGV[9], ''
if ARGV[14] == 'pickup' then
  -- A pickup code is unique among the store's open orders.
  for code in string.gmatch(ARGV[10], '[^,]+') do
    if redis.call('HSETNX', O.codes, code, order_id) == 1 then
      pickup = code
      break
    end
  end
  if pickup == '' then
    return {'retry', ''}
  end
end

-- Accept: the order enters the outbox first; from here on it is never lost.
local state, pay_by = 'accepted', 0
local o = {
  order_id = order_id, room_id = O.room_id, session_id = room[2] or '', user_id = user,
  sku = sku, qty = jint(qty), unit_price = jint(unit_price), offer_id = offer_id,
  method = ARGV[14], pickup_code = pickup, qr = ARGV[13], address = ARGV[15],
  lat = ARGV[16], lng = ARGV[17], phone = ARGV[18], version = '1',
  created_at = jint(ts), updated_at = jint(ts),
}
if via ~= '' then
  o.via, o.route_rule, o.route_distance_m = via, ARGV[21], ARGV[22]
end
left = left - qty
redis.call('HSET', O.stock, sku, jint(left))
local held
if holds then
  state = 'awaiting_payment'
  local hold_s  -- an offer's units are held for less time (offer_hold_s)
  if offer_key then
    hold_s = tonumber(room[5] or '') or 300
  else
    hold_s = tonumber(room[4] or '') or 900
  end
  pay_by = ts + hold_s * 1000
  o.pay_by = jint(pay_by)
  held = redis.call('HINCRBY', O.held, sku, qty)
  redis.call('SADD', user_key(user, 'unpaid'), order_id)
  redis.call('ZADD', O.due, pay_by, 'pay:' .. order_id)
else
  redis.call('HINCRBY', O.sold, sku, qty)
end
o.state = state
record(o, '', 'purchase', user, '', ts, holds and 0 or qty, 'order')
redis.call('LPUSH', user_key(user, 'orders'), order_id)  -- newest first
if via == '' then
  local gmv = unit_price * qty
  redis.call('HINCRBY', KEYS[13], 'orders', 1)
  redis.call('HINCRBY', KEYS[13], 'u:' .. sku, qty)
  redis.call('HINCRBY', KEYS[13], 'g:' .. sku, gmv)
  redis.call('HSET', KEYS[13], 'last_order_at', jint(ts))
  redis.call('SADD', KEYS[14], user)
end
local reply = {'new', first_answer(o)}

if held == nil then
  held = tonumber(redis.call('HGET', O.held, sku) or '0')
end
emit(O.seq, O.history, O.channel, 'stock:' .. sku, stock_body(sku, left, held), ts)
if offer_key then
  redis.call('HSET', offer_key, 'left', jint(offer_left))
  redis.call('HINCRBY', offer_key .. ':buyers', user, qty)
  if offer_left == 0 then
    close_offer(KEYS[15], ARGV[12], offer_id, 'sold_out', O.seq, O.history, O.channel, ts)
  else
    emit(O.seq, O.history, O.channel, 'offer:' .. offer_id, offer_body(offer_key, offer_id), ts)
  end
end
return reply
