-- draws_enter.lua: a viewer enters a draw if eligible; a repeat is a no-op.
--
-- KEYS[1] the draw's hash  KEYS[2] its entrants set  KEYS[3] the session's buyers set
-- ARGV[1] user  ARGV[2] the room's key prefix (<prefix>chatters:<session>)
-- Reply: 'ok' | 'repeat' | 'not_eligible' | 'closed' | 'not_found'

local d = redis.call('HMGET', KEYS[1], 'status', 'ends_at', 'eligible', 'session')
if not d[1] then
  return 'not_found'
end
if d[1] ~= 'open' or now_ms() >= tonumber(d[2]) then
  return 'closed'
end
if d[3] == 'buyers' and redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then
  return 'not_eligible'
end
if d[3] == 'chatted' then
  local chatters = ARGV[2] .. 'chatters:' .. (d[4] or '')
  if d[4] == '' or redis.call('SISMEMBER', chatters, ARGV[1]) == 0 then
    return 'not_eligible'
  end
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 'repeat'
end
redis.call('HINCRBY', KEYS[1], 'entrants', 1)
redis.call('HSET', KEYS[1], 'dirty', '1')
return 'ok'
