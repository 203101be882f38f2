-- orders_sweep.lua: the clock's moves that are due, guarded: an item moves an order only
-- if the order is still in the move's source state and now >= its own time (pay_by,
-- pickup_by), so any number of processes may sweep at once, and again after a restart.
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua.
-- ARGV[4] most items per call  ARGV[5] spec of the pay_by move (-> expired)
-- ARGV[6] spec of the pickup_by move (-> uncollected)
-- ARGV[7] spec pending_group -> accepted  ARGV[8] spec pending_group -> cancelled
-- Due items (members of the due zset, score = due ms): 'pay:<id>', 'pickup:<id>',
-- 'code:<id>' (a picked-up order's code is released for reuse), 'group:<id>' (a
-- group's ends_at: failed below threshold, else its joins are over), 'gsettle:<id>'
-- (a group's members still to move after a batch), 'gemit:<id>' (its latest progress).
--
-- Reply: {moved, due_left} where due_left counts items still due after this call.

local ts = now_ms()
local items = redis.call('ZRANGEBYSCORE', O.due, '-inf', ts, 'LIMIT', 0, tonumber(ARGV[4]))
local pay, pickup = parse_spec(ARGV[5]), parse_spec(ARGV[6])
local group_ok, group_fail = parse_spec(ARGV[7]), parse_spec(ARGV[8])
local moved = 0
for _, item in ipairs(items) do
  redis.call('ZREM', O.due, item)
  local kind, id = string.match(item, '^(%a+):(.*)$')
  if kind == 'group' then
    if close_group_if_due(id, group_ok, group_fail, ts) then
      moved = moved + 1
    end
  elseif kind == 'gsettle' then
    settle(id, group_ok, group_fail, ts)
  elseif kind == 'gemit' then
    if redis.call('HGET', group_key(id), 'dirty') then
      emit_group(id, ts)
    end
  end
  local o = (kind == 'pay' or kind == 'pickup' or kind == 'code') and load_order(id) or nil
  if o ~= nil then
    if kind == 'pay' and pay.sources[o.state] and ts >= tonumber(o.pay_by) then
      change(o, pay, 'clock', 'clock', 'pay_by', ts)
      moved = moved + 1
    elseif kind == 'pickup' and pickup.sources[o.state] and ts >= tonumber(o.pickup_by) then
      change(o, pickup, 'clock', 'clock', 'pickup_by', ts)
      moved = moved + 1
    elseif kind == 'code' and o.state == 'picked_up' then
      drop_code(o)
      retire(o)
    end
  end
end
flush_stock(ts)
return {moved, redis.call('ZCOUNT', O.due, '-inf', ts)}
