-- orders_move.lua: one order moved by a person (staff, the buyer, the undo of a
-- verification), if the move is legal now.
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua.
-- ARGV[4] order_id  ARGV[5] move spec (commerce.order_states.spec)  ARGV[6] by
-- ARGV[7] actor  ARGV[8] reason  ARGV[9] the buyer it must belong to, or ''
-- ARGV[10] the fulfilment method it must have, or ''
-- ARGV[11] ms from now to pickup_by when it becomes `ready` (0: not that move)
-- ARGV[12] undo window (ms) since verified_at (0: not an undo)
--
-- Reply: {'ok', order json} | {'not_found'} | {'illegal', state} | {'method', method}
--      | {'undo_expired', verified_at}. A refusal changes nothing.

local ts = now_ms()
local id = ARGV[4]
local o = load_order(id)
if o == nil or (ARGV[9] ~= '' and o.user_id ~= ARGV[9]) then
  return {'not_found'}
end
local spec = parse_spec(ARGV[5])
if not spec.sources[o.state] then
  return {'illegal', o.state}
end
if ARGV[10] ~= '' and o.method ~= ARGV[10] then
  return {'method', o.method}
end
local undo_ms = tonumber(ARGV[12])
if undo_ms > 0 then
  if ts - tonumber(o.verified_at or '0') > undo_ms then
    return {'undo_expired', o.verified_at or '0'}
  end
  o.verified_at = ''
  o.verified_by = ''
  redis.call('ZREM', O.due, 'code:' .. id)
end
local pickup_ms = tonumber(ARGV[11])
if pickup_ms > 0 then
  o.pickup_by = jint(ts + pickup_ms)
  redis.call('ZADD', O.due, ts + pickup_ms, 'pickup:' .. id)
end
local json = change(o, spec, ARGV[6], ARGV[7], ARGV[8], ts)
flush_stock(ts)
return {'ok', json}
