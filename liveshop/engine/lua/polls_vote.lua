-- polls_vote.lua: one vote per user per poll (the first stands). The count is shown by
-- the next tick (polls_tick.lua, every process's sweep): votes are not each a message.
--
-- KEYS[1] the poll's hash   ARGV[1] user  ARGV[2] option (0-based)
-- Reply: 'ok' | 'repeat' (the same vote again) | 'already_voted' | 'not_found'
--        | 'closed' | 'out_of_range'

local p = redis.call('HMGET', KEYS[1], 'status', 'ends_at', 'n')
if not p[1] then
  return 'not_found'
end
if p[1] ~= 'open' or now_ms() >= tonumber(p[2]) then
  return 'closed'
end
local option = tonumber(ARGV[2])
if option >= tonumber(p[3]) then
  return 'out_of_range'
end
if redis.call('HSETNX', KEYS[1], 'voter:' .. ARGV[1], option) == 0 then
  if redis.call('HGET', KEYS[1], 'voter:' .. ARGV[1]) == ARGV[2] then
    return 'repeat'
  end
  return 'already_voted'
end
redis.call('HINCRBY', KEYS[1], 'c' .. option, 1)
redis.call('HSET', KEYS[1], 'dirty', '1')
return 'ok'
