-- joint_stock.lua: a joint room's shown stock of one SKU, the sum of its member stores'
-- (read from their own slots by commerce.joint_rooms); announced when it changed.
--
-- KEYS[1] the joint room's stock hash  KEYS[2] seq  KEYS[3] history
-- ARGV[1] sku  ARGV[2] total  ARGV[3] channel
--
-- Reply: 1 when the figure changed, else 0.

if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
emit(KEYS[2], KEYS[3], ARGV[3], 'stock:' .. ARGV[1], stock_body(ARGV[1], tonumber(ARGV[2]), 0), now_ms())
return 1
