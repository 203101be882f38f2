-- orders_refund_state.lua: a refund's outcome (from commerce.refunds) on its order.
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua.
-- ARGV[4] order_id  ARGV[5] refund reason  ARGV[6] 'done' or 'failed'
--
-- Reply: {'ok', json} | {'same'} (already recorded) | {'not_found'}

local ts = now_ms()
local field = ARGV[4] .. '|' .. ARGV[5]
if redis.call('HGET', O.refunds, field) == ARGV[6] then
  return {'same'}
end
redis.call('HSET', O.refunds, field, ARGV[6])
local o = load_order(ARGV[4])
if o == nil then
  return {'not_found'}
end
o.refund_state = ARGV[6]
return {'ok', touch(o, 'refund', 'refunds', 'refund_' .. ARGV[6], ts)}
