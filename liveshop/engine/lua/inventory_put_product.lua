-- inventory_put_product.lua: create or replace a product and set its stock to a count.
--
-- KEYS[1] products hash  KEYS[2] price hash  KEYS[3] stock hash  KEYS[4] stocked hash
-- KEYS[5] seq counter    KEYS[6] history stream  KEYS[7] held hash  KEYS[8] bands hash
-- ARGV[1] sku  ARGV[2] meta JSON {name, image}  ARGV[3] price  ARGV[4] stock  ARGV[5] channel
--
-- Reply: {'ok', new stock} | {'out_of_band', floor, ceiling} (nothing changed).
-- `stocked` moves by the difference so that stock + held + sold == stocked holds
-- across edits.

local sku, stock = ARGV[1], tonumber(ARGV[4])
local band = out_of_band(KEYS[8], sku, ARGV[3])
if band then
  return {'out_of_band', band[1], band[2]}
end
local old = tonumber(redis.call('HGET', KEYS[3], sku) or '0')
redis.call('HSET', KEYS[1], sku, ARGV[2])
redis.call('HSET', KEYS[2], sku, ARGV[3])
redis.call('HSET', KEYS[3], sku, jint(stock))
redis.call('HINCRBY', KEYS[4], sku, stock - old)
emit(KEYS[5], KEYS[6], ARGV[5], 'stock:' .. sku, stock_body(sku, stock, tonumber(redis.call('HGET', KEYS[7], sku) or '0')), now_ms())
return {'ok', stock}
