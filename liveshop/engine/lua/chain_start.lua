-- chain_start.lua: HQ opens a deal across stores (多店联动集单). Its keys live under the
-- group's own hash tag: one script decides each join, whichever room it comes from.
--
-- KEYS[1] the group hash
-- ARGV[1] sku  ARGV[2] price  ARGV[3] metric  ARGV[4] threshold  ARGV[5] duration (ms)
-- ARGV[6] cap (its own stock)  ARGV[7] per-user limit  ARGV[8] rooms (JSON list)
--
-- Reply: {ends_at}. The members' orders live in their rooms (commerce.chain_groups).

local ts = now_ms()
local ends_at = ts + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'sku', ARGV[1], 'price', ARGV[2], 'metric', ARGV[3],
  'threshold', ARGV[4], 'value', '0', 'cap', ARGV[6], 'left', ARGV[6],
  'per_user_limit', ARGV[7], 'ends_at', jint(ends_at), 'status', 'open', 'rooms', ARGV[8],
  'counted_units', '0', 'created', '0', 'settled', '0', 'created_at', jint(ts), 'dirty', '1')
return jint(ends_at)
