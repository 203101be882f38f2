-- _groups.lua: prepended (after _prelude.lua and _orders.lua) to the scripts of group
-- buying (groups_* and orders_sweep). Not a script itself.
--
-- A group of a room lives under the room's hash tag, so one script decides a join
-- together with its order, and a close together with every member's move:
--   <prefix>group:<id>          hash: sku, price, metric, threshold, value, cap, left,
--                               per_user_limit, ends_at, status, settled, closed_at, ...
--   <prefix>group:<id>:members  hash user -> units joined
--   <prefix>group:<id>:orders   list of the members' order ids, in join order
--   <prefix>groups              hash group id -> ends_at: the room's groups (welcome)
-- Units: at the start `cap` units go left -> held (the group's shelf, `left`); a join
-- keeps them held (now by its pending_group order); success moves members held -> sold,
-- failure and the end of a group return them (and the shelf's rest) held -> left.
-- Member moves run in batches (`settled` is the cursor into the orders list); a due item
-- 'gsettle:<id>' carries on where a batch stopped.

local GROUP_FIELDS = {'sku', 'price', 'metric', 'threshold', 'value', 'cap', 'left',
  'per_user_limit', 'ends_at', 'status'}
local SETTLE_BATCH = 250

local function group_key(id)
  return O.prefix .. 'group:' .. id
end

local function group_body(id)
  local g = redis.call('HMGET', group_key(id), unpack(GROUP_FIELDS))
  return '{"type":"group","group_id":' .. jstr(id) .. ',"sku":' .. jstr(g[1])
    .. ',"price":' .. g[2] .. ',"metric":' .. jstr(g[3]) .. ',"threshold":' .. g[4]
    .. ',"value":' .. g[5] .. ',"cap":' .. g[6] .. ',"left":' .. g[7]
    .. ',"per_user_limit":' .. g[8] .. ',"ends_at":' .. g[9] .. ',"status":' .. jstr(g[10])
end

local GROUP_EMIT_MS = 500  -- a group's progress goes out at most twice a second

local function emit_group(id, ts)
  local key = group_key(id)
  redis.call('HSET', key, 'emitted_at', jint(ts))
  redis.call('HDEL', key, 'dirty')
  emit(O.seq, O.history, O.channel, 'group:' .. id, group_body(id), ts)
end

-- Progress (a join) is coalesced at the source, by the engine's clock: sent now if the
-- last message is GROUP_EMIT_MS old, else marked and sent by the sweep then (a due item
-- 'gemit:<id>'), so the latest value is out within about a second. Status changes go
-- out at once (emit_group).
local function emit_progress(id, ts)
  local key = group_key(id)
  local last = tonumber(redis.call('HGET', key, 'emitted_at') or '0')
  if ts - last >= GROUP_EMIT_MS then
    emit_group(id, ts)
  elseif redis.call('HSETNX', key, 'dirty', '1') == 1 then
    redis.call('ZADD', O.due, last + GROUP_EMIT_MS, 'gemit:' .. id)
  end
end

-- The shelf's units nobody joined go back to the room (a group that ended or failed).
local function return_shelf(id, ts)
  local key = group_key(id)
  local left = tonumber(redis.call('HGET', key, 'left') or '0')
  if left > 0 then
    local sku = redis.call('HGET', key, 'sku')
    redis.call('HINCRBY', O.held, sku, -left)
    redis.call('HINCRBY', O.stock, sku, left)
    redis.call('HSET', key, 'left', '0')
    MOVED[sku] = true
  end
end

-- Moves up to SETTLE_BATCH members along the group's outcome; true when more are left
-- (a due item 'gsettle:<id>' is set for them). ok_spec: pending_group -> accepted;
-- fail_spec: pending_group or paid -> cancelled (units back, paid ones refunded).
local function settle(id, ok_spec, fail_spec, ts)
  local key = group_key(id)
  local status = redis.call('HGET', key, 'status')
  local spec, reason = ok_spec, ''
  if status == 'failed' or status == 'cancelled' then
    spec, reason = fail_spec, 'group_failed'
  elseif status ~= 'succeeded' then
    return false
  end
  local from = tonumber(redis.call('HGET', key, 'settled') or '0')
  local ids = redis.call('LRANGE', key .. ':orders', from, from + SETTLE_BATCH - 1)
  for _, order_id in ipairs(ids) do
    local o = load_order(order_id)
    if o ~= nil and spec.sources[o.state] then  -- unpaid members end at their pay_by
      change(o, spec, 'group', 'group', reason, ts)
    end
  end
  redis.call('HSET', key, 'settled', jint(from + #ids))
  local more = from + #ids < redis.call('LLEN', key .. ':orders')
  if more then
    redis.call('ZADD', O.due, ts, 'gsettle:' .. id)
  end
  return more
end

-- Counts a member's units toward the group (at the join, or at its payment in a
-- `payment: required` room); at the threshold the group succeeds and its members move.
-- Returns the value and whether the group succeeded now.
local function count_member(gid, user, qty, ok_spec, fail_spec, ts)
  local key = group_key(gid)
  redis.call('HINCRBY', key .. ':counted', user, qty)
  local units = redis.call('HINCRBY', key, 'counted_units', qty)
  local g = redis.call('HMGET', key, 'metric', 'threshold', 'status')
  local value = units
  if g[1] ~= 'units' then
    value = redis.call('HLEN', key .. ':counted')
  end
  redis.call('HSET', key, 'value', jint(value))
  if g[3] == 'open' and value >= tonumber(g[2]) then
    redis.call('HSET', key, 'status', 'succeeded', 'succeeded_at', jint(ts))
    session_count('groups_succeeded', 1)
    settle(gid, ok_spec, fail_spec, ts)
    return value, true
  end
  return value, false
end

-- An unpaid member's order ended (expired, cancelled): while its group still takes
-- joins the units go back to the group's shelf (they stay held). False: the group is
-- over, the caller puts them back in the room's stock.
O.back_to_group = function(o)
  if not set(o.group_id) then
    return false
  end
  local key = group_key(o.group_id)
  local g = redis.call('HMGET', key, 'status', 'closed_at')
  if (g[1] ~= 'open' and g[1] ~= 'succeeded') or g[2] then
    return false
  end
  local qty = tonumber(o.qty)
  redis.call('HINCRBY', key, 'left', qty)
  redis.call('HINCRBY', key .. ':members', o.user_id, -qty)
  emit_progress(o.group_id, now_ms())
  return true
end

-- A group's end (its ends_at, or the broadcaster's cancel): `failed`/`cancelled` below
-- threshold, or the end of a succeeded one's joins; the shelf's rest goes back.
local function end_group(id, status, ok_spec, fail_spec, ts)
  local key = group_key(id)
  if status ~= '' then
    redis.call('HSET', key, 'status', status)
    session_count('groups_failed', 1)  -- failed or cancelled
  end
  redis.call('HSET', key, 'closed_at', jint(ts))
  redis.call('ZREM', O.due, 'group:' .. id)
  return_shelf(id, ts)
  emit_group(id, ts)
  -- the `group.closed` webhook goes out through the outbox: the persister writes it
  -- before it acks the entry, so a crash anywhere only repeats it
  local members = 0
  for _, units in ipairs(redis.call('HVALS', key .. ':members')) do
    if tonumber(units) > 0 then
      members = members + 1
    end
  end
  redis.call('XADD', O.outbox, '*', 'kind', 'group', 'group_id', id, 'room_id', O.room_id,
    'at', jint(ts), 'g', group_body(id) .. ',"members":' .. members .. ',"closed_at":'
    .. jint(ts) .. '}')
  settle(id, ok_spec, fail_spec, ts)
end

-- The guarded end at the deadline (the sweep's 'group:<id>' item, and a payment that
-- comes after the deadline before any sweep did): only if still running and
-- now >= ends_at. True when it ended the group now.
local function close_group_if_due(id, ok_spec, fail_spec, ts)
  local g = redis.call('HMGET', group_key(id), 'status', 'ends_at', 'closed_at')
  if not g[1] or g[3] or ts < tonumber(g[2]) then
    return false
  end
  end_group(id, g[1] == 'open' and 'failed' or '', ok_spec, fail_spec, ts)
  return true
end

-- Opens a group (the console's group_start, and a campaign pack's queued group when its
-- time comes): its `cap` units leave the shelf. price_key, bands_key: the room's hashes.
-- Reply: {'ok', group json} | {'unknown_sku'} | {'short', units left}
--        | {'out_of_band', floor, ceiling} (nothing changed)
local function start_group(id, sku, price, metric, threshold, duration_ms, cap,
    per_user_limit, price_key, bands_key, ts)
  if not redis.call('HGET', price_key, sku) then
    return {'unknown_sku'}
  end
  local band = out_of_band(bands_key, sku, price)
  if band then
    return {'out_of_band', band[1], band[2]}
  end
  local left = tonumber(redis.call('HGET', O.stock, sku) or '0')
  if left < cap then
    return {'short', jint(left)}
  end
  redis.call('HINCRBY', O.stock, sku, -cap)
  redis.call('HINCRBY', O.held, sku, cap)
  MOVED[sku] = true
  local ends_at = ts + duration_ms
  redis.call('HSET', group_key(id), 'sku', sku, 'price', price, 'metric', metric,
    'threshold', threshold, 'value', '0', 'cap', jint(cap), 'left', jint(cap),
    'per_user_limit', per_user_limit, 'ends_at', jint(ends_at), 'status', 'open',
    'settled', '0', 'created_at', jint(ts))
  redis.call('HSET', O.prefix .. 'groups', id, jint(ends_at))
  redis.call('ZADD', O.due, ends_at, 'group:' .. id)
  emit_group(id, ts)
  flush_stock(ts)
  return {'ok', group_body(id) .. ',"seq":0,"ts":' .. jint(ts) .. '}'}
end
