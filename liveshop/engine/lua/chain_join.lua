-- chain_join.lua: one join of a cross-store deal, decided on the group's own slot: the
-- checks, the units, the count and, at the threshold, the success. The member's order
-- is created next in the room (orders_member.lua), by the joining process and, should it
-- die in between, by any process's relay from the members list.
--
-- KEYS[1] group hash  KEYS[2] members hash (user -> units joined)  KEYS[3] members list
-- ("<room>|<order_id>|<user>|<qty>|<'p' if pay-first>", in join order)  KEYS[4] the
-- join's record  KEYS[5] counted hash (user -> units that count: joined, or paid)
-- ARGV[1] room  ARGV[2] user  ARGV[3] qty  ARGV[4] order_id  ARGV[5] record ttl (s)
-- ARGV[6] '1' when the room requires payment: the join takes its units from the deal's
-- stock now and counts once paid (chain_count.lua, by the relay), as in a room's group.
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
redis.call('HINCRBY', KEYS[1], 'left', -qty)
redis.call('HINCRBY', KEYS[2], user, qty)
local pay_first = ARGV[6] == '1'
local status = g[8]
if not pay_first then
  status = count_chain_member(KEYS[1], KEYS[5], user, qty, ts)
end
redis.call('HSET', KEYS[1], 'dirty', '1')
redis.call('RPUSH', KEYS[3], room .. '|' .. order_id .. '|' .. user .. '|' .. jint(qty)
  .. '|' .. (pay_first and 'p' or ''))
return answer('accepted', '', status)
