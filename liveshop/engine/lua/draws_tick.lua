-- draws_tick.lua: every process's sweep, for each open draw: show the entrant count if
-- it moved; at ends_at stop taking entrants (status 'drawing', only if still open) and
-- hand the seed and the entrants to the caller, which computes the winners (a pure
-- function: every process gets the same) and calls draws_finish.lua.
--
-- KEYS[1] the draw's hash  KEYS[2] its entrants set  KEYS[3] seq  KEYS[4] history
-- ARGV[1] draw_id  ARGV[2] channel
-- Reply: {'open'} | {'due', seed, winners_count, {entrant...}} | {'drawn'} | {'missing'}

local d = redis.call('HMGET', KEYS[1], 'status', 'ends_at', 'dirty', 'seed', 'winners_count')
if not d[1] then
  return {'missing'}
end
if d[1] == 'drawn' then
  return {'drawn'}
end
local now = now_ms()
if d[1] == 'open' and now < tonumber(d[2]) then
  if d[3] == '1' then
    redis.call('HSET', KEYS[1], 'dirty', '0')
    emit(KEYS[3], KEYS[4], ARGV[2], 'draw:' .. ARGV[1], draw_body(KEYS[1], ARGV[1]), now)
  end
  return {'open'}
end
redis.call('HSET', KEYS[1], 'status', 'drawing')  -- no entrant after this
return {'due', d[4], d[5], redis.call('SMEMBERS', KEYS[2])}
