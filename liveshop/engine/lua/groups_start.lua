-- groups_start.lua: the broadcaster opens a group (拼团): its units leave the shelf.
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua, then KEYS[11] price hash,
-- KEYS[12] bands hash.
-- ARGV[4] group_id  ARGV[5] sku  ARGV[6] price  ARGV[7] metric ('buyers' | 'units')
-- ARGV[8] threshold  ARGV[9] duration (ms)  ARGV[10] cap (units)  ARGV[11] per-user limit
--
-- Reply: {'ok', group json} | {'unknown_sku'} | {'short', units left}
--        | {'out_of_band', floor, ceiling} (nothing changed)

local ts = now_ms()
local id, sku, cap = ARGV[4], ARGV[5], tonumber(ARGV[10])
if not redis.call('HGET', KEYS[11], sku) then
  return {'unknown_sku'}
end
local band = out_of_band(KEYS[12], sku, ARGV[6])
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
local ends_at = ts + tonumber(ARGV[9])
redis.call('HSET', group_key(id), 'sku', sku, 'price', ARGV[6], 'metric', ARGV[7],
  'threshold', ARGV[8], 'value', '0', 'cap', jint(cap), 'left', jint(cap),
  'per_user_limit', ARGV[11], 'ends_at', jint(ends_at), 'status', 'open',
  'settled', '0', 'created_at', jint(ts))
redis.call('HSET', O.prefix .. 'groups', id, jint(ends_at))
redis.call('ZADD', O.due, ends_at, 'group:' .. id)
emit_group(id, ts)
flush_stock(ts)
return {'ok', group_body(id) .. ',"seq":0,"ts":' .. jint(ts) .. '}'}
