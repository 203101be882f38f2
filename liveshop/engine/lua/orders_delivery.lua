-- orders_delivery.lua: a delivery provider's status callback.
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua.
-- ARGV[4] order_id  ARGV[5] provider status  ARGV[6] its rank (later in a delivery =
-- higher)  ARGV[7] the move it makes (spec) or '' (a status that moves nothing)
-- ARGV[8] actor
--
-- Reply: {'ok', json} | {'stale'} | {'not_found'}
-- Callbacks arrive late, twice, out of order: one whose rank is not above the last
-- applied one, or whose move is not legal now, changes nothing ('stale').

local ts = now_ms()
local o = load_order(ARGV[4])
if o == nil or o.method ~= 'delivery' then
  return {'not_found'}
end
local rank = tonumber(ARGV[6])
if rank <= tonumber(o.delivery_rank or '0') then
  return {'stale'}
end
if ARGV[7] ~= '' then
  local spec = parse_spec(ARGV[7])
  if not spec.sources[o.state] then
    return {'stale'}
  end
  o.delivery_status, o.delivery_rank = ARGV[5], jint(rank)
  local json = change(o, spec, 'delivery', ARGV[8], ARGV[5], ts)
  flush_stock(ts)
  return {'ok', json}
end
if TERMINAL[o.state] then
  return {'stale'}
end
o.delivery_status, o.delivery_rank = ARGV[5], jint(rank)
return {'ok', touch(o, 'delivery', ARGV[8], ARGV[5], ts)}
