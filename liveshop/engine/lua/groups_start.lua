-- groups_start.lua: the broadcaster opens a group (拼团): its units leave the shelf
-- (start_group in _groups.lua).
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua, then KEYS[11] price hash,
-- KEYS[12] bands hash.
-- ARGV[4] group_id  ARGV[5] sku  ARGV[6] price  ARGV[7] metric ('buyers' | 'units')
-- ARGV[8] threshold  ARGV[9] duration (ms)  ARGV[10] cap (units)  ARGV[11] per-user limit
--
-- Reply: {'ok', group json} | {'unknown_sku'} | {'short', units left}
--        | {'out_of_band', floor, ceiling} (nothing changed)

return start_group(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]),
  tonumber(ARGV[10]), ARGV[11], KEYS[11], KEYS[12], now_ms())
