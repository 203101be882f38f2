-- chain_cursor.lua: moves one of a deal's relay cursors ('created', 'settled') forward,
-- only from the value the caller read: two relays never move it back.
--
-- KEYS[1] the group hash   ARGV[1] field  ARGV[2] the value read  ARGV[3] the new value
-- Reply: 1 if moved, else 0.

if (redis.call('HGET', KEYS[1], ARGV[1]) or '0') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
