-- offers_close.lua: end offers: one by id (the broadcaster's offer_stop), or every
-- live offer whose time is up (the sweeper; ARGV[1] = '').
--
-- KEYS[1] live offers hash  KEYS[2] seq  KEYS[3] history
-- ARGV[1] offer_id or ''  ARGV[2] channel  ARGV[3] offer key prefix
-- Reply: the number of offers ended.

local ts = now_ms()
if ARGV[1] ~= '' then
  if not redis.call('HGET', KEYS[1], ARGV[1]) then
    return 0
  end
  close_offer(KEYS[1], ARGV[3], ARGV[1], 'ended', KEYS[2], KEYS[3], ARGV[2], ts)
  return 1
end
local n = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  if ts >= tonumber(redis.call('HGET', ARGV[3] .. id, 'ends_at') or '0') then
    close_offer(KEYS[1], ARGV[3], id, 'ended', KEYS[2], KEYS[3], ARGV[2], ts)
    n = n + 1
  end
end
return n
