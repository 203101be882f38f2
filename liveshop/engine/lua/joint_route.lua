-- joint_route.lua: a joint room's purchase request, in the joint room's slot: the member
-- store it goes to is recorded here first, then that store's own purchase script runs
-- (in the store's slot). A store changes only after it refused, so a retry, from any
-- process, goes to the same store and, its purchase being idempotent, gets one order.
--
-- KEYS[1] the request's route hash (store, rule, distance_m, tried, answer)
-- KEYS[2] the joint room's stats hash  KEYS[3] its buyers set
-- KEYS[4] the buyer's routed orders in this joint room (list, newest first, capped)
-- ARGV[1] op  ARGV[2..] by op; ARGV[#ARGV] the record's ttl (s)
--   'get'                                  -> {fields...}
--   'set', expected, store, rule, distance -> {'ok'} | {'moved'} (the store is not `expected`)
--   'refused', store                       -> {'ok'} | {'moved'}
--   'done', answer, status, sku, qty, gmv, user, order_id -> {'ok'} | {'already', answer}
--       the first answer wins; an accepted one counts in the joint room's session and
--       joins the buyer's list (their `welcome.state.my_orders` here)

local key, op, ttl = KEYS[1], ARGV[1], ARGV[#ARGV]
if op == 'get' then
  return redis.call('HGETALL', key)
end
local current = redis.call('HMGET', key, 'store', 'tried', 'answer')
if op == 'set' then
  if current[3] or (current[1] or '') ~= ARGV[2] then
    return {'moved'}
  end
  redis.call('HSET', key, 'store', ARGV[3], 'rule', ARGV[4], 'distance_m', ARGV[5])
  redis.call('EXPIRE', key, ttl)
  return {'ok'}
end
if op == 'refused' then
  if current[3] or current[1] ~= ARGV[2] then
    return {'moved'}
  end
  local tried = current[2] and (current[2] .. ',' .. ARGV[2]) or ARGV[2]
  redis.call('HSET', key, 'store', '', 'tried', tried)
  return {'ok'}
end
-- done
if current[3] then
  return {'already', current[3]}
end
redis.call('HSET', key, 'answer', ARGV[2])
redis.call('EXPIRE', key, ttl)
if ARGV[3] == 'accepted' then
  redis.call('HINCRBY', KEYS[2], 'orders', 1)
  redis.call('HINCRBY', KEYS[2], 'u:' .. ARGV[4], tonumber(ARGV[5]))
  redis.call('HINCRBY', KEYS[2], 'g:' .. ARGV[4], tonumber(ARGV[6]))
  redis.call('SADD', KEYS[3], ARGV[7])
  redis.call('LPUSH', KEYS[4], ARGV[8])
  redis.call('LTRIM', KEYS[4], 0, 49)
  redis.call('EXPIRE', KEYS[4], 30 * 86400)
end
return {'ok'}
