-- rooms_pin.lua: the broadcaster pins a product.
--
-- KEYS[1] room hash  KEYS[2] price hash  KEYS[3] seq  KEYS[4] history
-- ARGV[1] sku  ARGV[2] channel
-- Reply: 'ok' | 'unknown_sku'

if not redis.call('HGET', KEYS[2], ARGV[1]) then
  return 'unknown_sku'
end
redis.call('HSET', KEYS[1], 'pinned', ARGV[1])
emit(KEYS[3], KEYS[4], ARGV[2], '-', '{"type":"pinned","sku":' .. jstr(ARGV[1]), now_ms())
return 'ok'
