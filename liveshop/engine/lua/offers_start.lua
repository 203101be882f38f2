-- offers_start.lua: open a flash offer on one SKU (start_offer in _prelude.lua).
--
-- KEYS[1] room hash  KEYS[2] price hash  KEYS[3] stock hash  KEYS[4] live offers hash
-- KEYS[5] seq  KEYS[6] history  KEYS[7] bands hash  KEYS[8] the session's offers list
-- ARGV[1] offer_id  ARGV[2] sku  ARGV[3] price  ARGV[4] qty  ARGV[5] duration (ms)
-- ARGV[6] per_user_limit  ARGV[7] channel  ARGV[8] offer key prefix
--
-- Reply: {'ok', starts_at, ends_at} | {'not_live'} | {'unknown_sku'}
--        | {'busy', offer_id} (a live offer on the SKU) | {'short_stock', stock}
--        | {'out_of_band', floor, ceiling}

local K = {room = KEYS[1], price = KEYS[2], stock = KEYS[3], offers = KEYS[4], seq = KEYS[5],
  history = KEYS[6], bands = KEYS[7], session_offers = KEYS[8], channel = ARGV[7],
  offer_prefix = ARGV[8]}
return start_offer(K, ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]),
  ARGV[6], now_ms())
