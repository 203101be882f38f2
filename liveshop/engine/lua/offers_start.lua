-- offers_start.lua: open a flash offer on one SKU.
--
-- KEYS[1] room hash  KEYS[2] price hash  KEYS[3] stock hash  KEYS[4] live offers hash
-- KEYS[5] seq  KEYS[6] history  KEYS[7] bands hash
-- ARGV[1] offer_id  ARGV[2] sku  ARGV[3] price  ARGV[4] qty  ARGV[5] duration (ms)
-- ARGV[6] per_user_limit  ARGV[7] channel  ARGV[8] offer key prefix
--
-- Reply: {'ok', starts_at, ends_at} | {'not_live'} | {'unknown_sku'}
--        | {'busy', offer_id} (a live offer on the SKU) | {'short_stock', stock}
--        | {'out_of_band', floor, ceiling}
-- The offer sells from the SKU's own stock; it may not promise more than is stocked.

local ts = now_ms()
local sku, qty = ARGV[2], tonumber(ARGV[4])
if redis.call('HGET', KEYS[1], 'live') ~= '1' then
  return {'not_live'}
end
if not redis.call('HGET', KEYS[2], sku) then
  return {'unknown_sku'}
end
local band = out_of_band(KEYS[7], sku, ARGV[3])
if band then
  return {'out_of_band', band[1], band[2]}
end
for _, id in ipairs(redis.call('HKEYS', KEYS[4])) do
  local key = ARGV[8] .. id
  local o = redis.call('HMGET', key, 'sku', 'ends_at')
  if ts >= tonumber(o[2]) then
    close_offer(KEYS[4], ARGV[8], id, 'ended', KEYS[5], KEYS[6], ARGV[7], ts)
  elseif o[1] == sku then
    return {'busy', id}
  end
end
local stock = tonumber(redis.call('HGET', KEYS[3], sku) or '0')
if stock < qty then
  return {'short_stock', stock}
end
local key = ARGV[8] .. ARGV[1]
local ends_at = ts + tonumber(ARGV[5])
redis.call('HSET', key, 'sku', sku, 'price', ARGV[3], 'qty', jint(qty), 'left', jint(qty),
  'per_user_limit', ARGV[6], 'starts_at', jint(ts), 'ends_at', jint(ends_at), 'status', 'live')
redis.call('HSET', KEYS[4], ARGV[1], sku)
emit(KEYS[5], KEYS[6], ARGV[7], 'offer:' .. ARGV[1], offer_body(key, ARGV[1]), ts)
return {'ok', jint(ts), jint(ends_at)}
