-- draws_finish.lua: reveal the seed and the winners, once (only if still 'drawing').
--
-- KEYS[1] the draw's hash  KEYS[2] seq  KEYS[3] history
-- ARGV[1] draw_id  ARGV[2] winners (JSON array)  ARGV[3] channel
-- Reply: 'ok' | 'already'

if redis.call('HGET', KEYS[1], 'status') ~= 'drawing' then
  return 'already'
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'status', 'drawn', 'winners', ARGV[2], 'drawn_at', now)
emit(KEYS[2], KEYS[3], ARGV[3], 'draw:' .. ARGV[1], draw_body(KEYS[1], ARGV[1]), now)
return 'ok'
