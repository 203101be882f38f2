-- orders_member.lua: the order of a cross-store deal's member, in the room where they
-- joined (it is picked up at that store). Made once: a second call (the relay after the
-- joining process) finds it. Its units are the deal's own stock, not the room's shelf
-- (`pool: chain`: no stock, held or sold moves).
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua, then KEYS[11] the order's key
-- ARGV[4] order_id  ARGV[5] user  ARGV[6] sku  ARGV[7] qty  ARGV[8] unit price
-- ARGV[9] group_id  ARGV[10] code candidates  ARGV[11] QR text
-- ARGV[12] spec pending_group -> accepted, applied at once when ARGV[13] is 'succeeded'
-- ARGV[14] '1' when the member joined pay-first (the room requires payment): the order is
-- `awaiting_payment` until its pay_by (the room's hold_s), and counts once paid.
--
-- Reply: {'new' | 'exists', order json} | {'retry'} (every code candidate taken)

local packed = redis.call('GET', KEYS[11])
if packed then
  return {'exists', order_json(cjson.decode(packed))}
end
local ts = now_ms()
local order_id, user = ARGV[4], ARGV[5]
local pickup = ''
for code in string.gmatch(ARGV[10], '[^,]+') do
  if redis.call('HSETNX', O.codes, code, order_id) == 1 then
    pickup = code
    break
  end
end
if pickup == '' then
  return {'retry'}
end
local o = {
  order_id = order_id, room_id = O.room_id,
  session_id = redis.call('HGET', O.room, 'session_id') or '', user_id = user,
  sku = ARGV[6], qty = ARGV[7], unit_price = ARGV[8], method = 'pickup',
  pickup_code = pickup, qr = ARGV[11], group_id = ARGV[9], pool = 'chain', version = '1',
  state = 'pending_group', created_at = jint(ts), updated_at = jint(ts),
}
if ARGV[14] == '1' then
  local hold_s = tonumber(redis.call('HGET', O.room, 'hold_s') or '') or 900
  local pay_by = ts + hold_s * 1000
  o.state, o.pay_by = 'awaiting_payment', jint(pay_by)
  redis.call('SADD', user_key(user, 'unpaid'), order_id)
  redis.call('ZADD', O.due, pay_by, 'pay:' .. order_id)
end
local json = record(o, '', 'group_join', user, '', ts, 0, 'order')
session_count('group_joins', 1)
redis.call('LPUSH', user_key(user, 'orders'), order_id)
if ARGV[13] == 'succeeded' and ARGV[14] ~= '1' then
  json = change(o, parse_spec(ARGV[12]), 'group', 'group', '', ts)
end
flush_stock(ts)
return {'new', json}
