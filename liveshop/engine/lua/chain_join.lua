-- chain_join.lua: one join of a cross-store deal, decided on the group's own slot: the
-- checks, the units, the count and, at the threshold, the success. The member's order
-- is created next in the room (orders_member.lua), by the joining process and, should it
-- die in between, by any process's relay from the members list.
--
-- KEYS[1] group hash  KEYS[2] members hash (user -> units)  KEYS[3] members list
-- ("<room>|<order_id>|<user>|<qty>", in join order)  KEYS[4] the join's record
-- ARGV[1] room  ARGV[2] user  ARGV[3] qty  ARGV[4] order_id  ARGV[5] record ttl (s)
--
-- Reply: {'new' | 'repeat', answer} where answer is JSON {"s", "r", "o", "k", "q", "u",
-- "g", "status"}: accepted (with the group's status after it) or rejected (group_closed,
-- group_full, limit_exceeded).

local earlier = redis.call('GET', KEYS[4])
if earlier then
  return {'repeat', earlier}
end
local ts = now_ms()
local room, user, qty, order_id = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local g = redis.call('HMGET', KEYS[1], 'sku', 'price', 'metric', 'threshold', 'left',
  'per_user_limit', 'ends_at', 'status', 'rooms', 'closed_at')
local function answer(status, reason, group_status)
  local a = '{"s":' .. jstr(status) .. ',"r":' .. jstr(reason) .. ',"o":'
    .. jstr(status == 'accepted' and order_id or '') .. ',"k":' .. jstr(g[1] or '')
    .. ',"q":' .. jint(qty) .. ',"u":' .. (g[2] or '0') .. ',"status":' .. jstr(group_status)
    .. '}'
  redis.call('SET', KEYS[4], a, 'EX', tonumber(ARGV[5]))
  return {'new', a}
end
if not g[1] or not string.find(g[9], '"' .. room .. '"', 1, true) then
  return answer('rejected', 'group_closed', g[8] or '')
end
if (g[8] ~= 'open' and g[8] ~= 'succeeded') or ts >= tonumber(g[7]) then
  return answer('rejected', 'group_closed', g[8])
end
if tonumber(g[5]) < qty then
  return answer('rejected', 'group_full', g[8])
end
if g[10] then
  return answer('rejected', 'group_closed', g[8])
end
if tonumber(redis.call('HGET', KEYS[2], user) or '0') + qty > tonumber(g[6]) then
  return answer('rejected', 'limit_exceeded', g[8])
end
local left = redis.call('HINCRBY', KEYS[1], 'left', -qty)
redis.call('HINCRBY', KEYS[2], user, qty)
local units = redis.call('HINCRBY', KEYS[1], 'counted_units', qty)
local value = units
if g[3] ~= 'units' then
  value = redis.call('HLEN', KEYS[2])
end
local status = g[8]
if status == 'open' and value >= tonumber(g[4]) then
  status = 'succeeded'
  redis.call('HSET', KEYS[1], 'status', status, 'succeeded_at', jint(ts))
end
if left == 0 and status == 'succeeded' then
  redis.call('HSET', KEYS[1], 'closed_at', jint(ts))  -- full: its joins are over
end
redis.call('HSET', KEYS[1], 'value', jint(value), 'dirty', '1')
redis.call('RPUSH', KEYS[3], room .. '|' .. order_id .. '|' .. user .. '|' .. jint(qty))
return answer('accepted', '', status)
