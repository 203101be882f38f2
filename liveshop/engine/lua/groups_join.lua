-- groups_join.lua: one join, atomically: the group's checks, its order created
-- `pending_group` (units held from the group's shelf), the group's value, and at the
-- join that reaches the threshold the group's success (members moved in batches).
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua, then KEYS[11] the order's key
-- (its id is made from (user, request_id): the order is the request's idempotency record)
-- ARGV[4] user  ARGV[5] group_id  ARGV[6] qty  ARGV[7] order_id  ARGV[8] code candidates
-- ARGV[9] idempotency ttl (s)  ARGV[10] QR text  ARGV[11] spec pending_group -> accepted
-- ARGV[12] spec of a failed group's members -> cancelled  ARGV[13] most unpaid per user
-- In a `payment: required` room the member's order is `awaiting_payment` (units held
-- from the group's shelf until pay_by) and counts once paid (orders_pay.lua).
--
-- Reply: {kind, answer} as inventory_buy.lua's ('new' | 'repeat' | 'retry'), the answer
-- with "g": group_id. Rejections: group_closed (not open, or its time is up), group_full
-- (fewer units left than qty), limit_exceeded (per_user_limit), not_live.

local cached = redis.call('GET', KEYS[11])
local user, gid, qty = ARGV[4], ARGV[5], tonumber(ARGV[6])
local function answer_of(o)
  local state = o.pay_by and 'awaiting_payment' or 'pending_group'
  return '{"s":"accepted","r":"","o":' .. jstr(o.order_id) .. ',"p":' .. jstr(o.pickup_code or '')
    .. ',"u":' .. o.unit_price .. ',"k":' .. jstr(o.sku) .. ',"q":' .. o.qty
    .. ',"t":' .. jstr(state) .. ',"b":' .. (o.pay_by or '0') .. ',"g":' .. jstr(gid) .. '}'
end
if cached then
  if string.sub(cached, 1, 5) == '{"s":' then
    return {'repeat', cached}
  end
  return {'repeat', answer_of(cjson.decode(cached))}
end
local ts = now_ms()
local key = group_key(gid)
local g = redis.call('HMGET', key, 'sku', 'price', 'metric', 'threshold', 'left',
  'per_user_limit', 'ends_at', 'status')
local function reject(reason)
  local a = '{"s":"rejected","r":' .. jstr(reason) .. ',"o":"","p":"","u":0,"k":'
    .. jstr(g[1] or '') .. ',"q":' .. jint(qty) .. ',"t":"","b":0,"g":' .. jstr(gid) .. '}'
  redis.call('SET', KEYS[11], a, 'EX', ARGV[9])
  return {'new', a}
end
if not g[1] then
  return reject('group_closed')
end
local status = g[8]
if (status ~= 'open' and status ~= 'succeeded') or ts >= tonumber(g[7]) then
  return reject('group_closed')
end
if tonumber(g[5]) < qty then
  return reject('group_full')  -- also a group that closed because it is full
end
if redis.call('HEXISTS', key, 'closed_at') == 1 then
  return reject('group_closed')
end
local room = redis.call('HMGET', O.room, 'live', 'session_id', 'payment', 'hold_s')
if room[1] ~= '1' then
  return reject('not_live')
end
local holds = room[3] == 'required'
if holds and redis.call('SCARD', user_key(user, 'unpaid')) >= tonumber(ARGV[13]) then
  return reject('too_many_unpaid')
end
local mine = tonumber(redis.call('HGET', key .. ':members', user) or '0')
if mine + qty > tonumber(g[6]) then
  return reject('limit_exceeded')
end
local order_id, pickup = ARGV[7], ''
for code in string.gmatch(ARGV[8], '[^,]+') do
  if redis.call('HSETNX', O.codes, code, order_id) == 1 then
    pickup = code
    break
  end
end
if pickup == '' then
  return {'retry', ''}
end

local sku, price = g[1], g[2]
local o = {
  order_id = order_id, room_id = O.room_id, session_id = room[2] or '', user_id = user,
  sku = sku, qty = jint(qty), unit_price = price, method = 'pickup', pickup_code = pickup,
  qr = ARGV[10], group_id = gid, version = '1', state = 'pending_group',
  created_at = jint(ts), updated_at = jint(ts),
}
if holds then
  local pay_by = ts + (tonumber(room[4] or '') or 900) * 1000
  o.state, o.pay_by = 'awaiting_payment', jint(pay_by)
  redis.call('SADD', user_key(user, 'unpaid'), order_id)
  redis.call('ZADD', O.due, pay_by, 'pay:' .. order_id)
end
record(o, '', 'group_join', user, '', ts, 0, 'order')
session_count('group_joins', 1)
redis.call('LPUSH', user_key(user, 'orders'), order_id)
redis.call('RPUSH', key .. ':orders', order_id)
redis.call('HINCRBY', key .. ':members', user, qty)
local left = redis.call('HINCRBY', key, 'left', -qty)
local ok_spec, fail_spec = parse_spec(ARGV[11]), parse_spec(ARGV[12])
local succeeded_now = false
if not holds then
  local _value
  _value, succeeded_now = count_member(gid, user, qty, ok_spec, fail_spec, ts)
  if status == 'succeeded' then
    change(o, ok_spec, 'group', 'group', '', ts)  -- a later join: accepted at once
  end
end
if left == 0 and (status == 'succeeded' or succeeded_now) then
  end_group(gid, '', ok_spec, fail_spec, ts)  -- full and succeeded: its joins are over
elseif succeeded_now then
  emit_group(gid, ts)
else
  emit_progress(gid, ts)
end
flush_stock(ts)
return {'new', answer_of(o)}
