-- orders_get.lua: orders as their `order` JSON: the ids given, or a buyer's latest.
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua.
-- ARGV[4] user id ('' : use the ids)  ARGV[5] most orders  ARGV[6..] order ids
--
-- Reply: a list of {order json, user_id}, newest first for a buyer; ids not found are
-- left out.

local ids = {}
if ARGV[4] ~= '' then
  ids = redis.call('LRANGE', user_key(ARGV[4], 'orders'), 0, tonumber(ARGV[5]) - 1)
else
  for i = 6, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
end
local out = {}
for _, id in ipairs(ids) do
  local o = load_order(id)
  if o ~= nil then
    out[#out + 1] = {order_json(o), o.user_id}
  end
end
return out
