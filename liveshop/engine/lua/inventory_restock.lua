-- inventory_restock.lua: the broadcaster corrects or adds to a SKU's stock.
--
-- KEYS[1] price hash   KEYS[2] stock hash   KEYS[3] stocked hash
-- KEYS[4] seq counter  KEYS[5] history stream  KEYS[6] held hash
-- ARGV[1] sku   ARGV[2] delta (may be negative)   ARGV[3] channel
--
-- Reply: {'ok', left} | {'unknown_sku', 0} | {'negative', left} (nothing changed).

local sku, delta = ARGV[1], tonumber(ARGV[2])
if not redis.call('HGET', KEYS[1], sku) then
  return {'unknown_sku', 0}
end
local left = tonumber(redis.call('HGET', KEYS[2], sku) or '0')
if left + delta < 0 then
  return {'negative', left}
end
left = left + delta
redis.call('HSET', KEYS[2], sku, jint(left))
redis.call('HINCRBY', KEYS[3], sku, delta)
emit(KEYS[4], KEYS[5], ARGV[3], 'stock:' .. sku, stock_body(sku, left, tonumber(redis.call('HGET', KEYS[6], sku) or '0')), now_ms())
return {'ok', left}
