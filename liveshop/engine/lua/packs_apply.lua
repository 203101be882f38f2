-- packs_apply.lua: go live with a campaign pack (主题包), in one step: the pack's products
-- stocked and priced, its offers queued for the new session, the session opened.
--
-- KEYS[1] room  KEYS[2] products  KEYS[3] price  KEYS[4] stock  KEYS[5] stocked
-- KEYS[6] held  KEYS[7] seq  KEYS[8] history  KEYS[9] bands  KEYS[10] stats
-- KEYS[11] buyers  KEYS[12] audience  KEYS[13] packs  KEYS[14] queued  KEYS[15] queued_due
-- KEYS[16] minutes  KEYS[17] session offers  KEYS[18] hints log  KEYS[19] outbox
-- KEYS[20] reservations
-- ARGV[1] new session id  ARGV[2] title  ARGV[3] channel  ARGV[4] pack_id  ARGV[5] version
-- ARGV[6] n products, then 4 each: sku, meta JSON ('' keeps the room's), price ('' keeps
--   the room's), units to add ('' none); then n offers, 6 each: sku, price, qty,
--   per_user_limit, duration (ms), at (ms after going live); then n groups, 8 each: sku,
--   price, metric, threshold, cap, per_user_limit, duration (ms), at (ms after going live)
--
-- Reply: {'ok', session_id, title, started_at, applied (1 now, 0 already before)}
--      | {'already', session_id, title, started_at} (live already: nothing changes)
--      | {'withdrawn'} | {'unknown_sku', sku} | {'out_of_band', sku, floor, ceiling}
-- Every check comes before the first write, so a refusal changes nothing. A version is
-- applied at most once per room (KEYS[13]); going live with it again only opens the
-- session.

local ts = now_ms()
local r = redis.call('HMGET', KEYS[1], 'live', 'session_id', 'title', 'started_at')
if r[1] == '1' then
  return {'already', r[2], r[3] or '', r[4] or '0'}
end
local field = ARGV[4] .. ':' .. ARGV[5]
local marker = redis.call('HGET', KEYS[13], field)
if marker == 'withdrawn' then
  return {'withdrawn'}
end
local n_products = tonumber(ARGV[6])
local o = 7 + n_products * 4
local n_offers = tonumber(ARGV[o])
local gi = o + 1 + n_offers * 6
local n_groups = tonumber(ARGV[gi])
if not marker then
  for i = 0, n_products - 1 do
    local sku, meta, price = ARGV[7 + i * 4], ARGV[8 + i * 4], ARGV[9 + i * 4]
    local known = redis.call('HGET', KEYS[3], sku)
    if not known and (meta == '' or price == '') then
      return {'unknown_sku', sku}
    end
    local band = price ~= '' and out_of_band(KEYS[9], sku, price)
    if band then
      return {'out_of_band', sku, band[1], band[2]}
    end
  end
  for i = 0, n_offers - 1 do
    local sku, price = ARGV[o + 1 + i * 6], ARGV[o + 2 + i * 6]
    local band = out_of_band(KEYS[9], sku, price)
    if band then
      return {'out_of_band', sku, band[1], band[2]}
    end
  end
  for i = 0, n_groups - 1 do
    local sku, price = ARGV[gi + 1 + i * 8], ARGV[gi + 2 + i * 8]
    local band = out_of_band(KEYS[9], sku, price)
    if band then
      return {'out_of_band', sku, band[1], band[2]}
    end
  end
end

open_session({room = KEYS[1], seq = KEYS[7], history = KEYS[8], stats = KEYS[10],
  buyers = KEYS[11], audience = KEYS[12], minutes = KEYS[16], session_offers = KEYS[17],
  hints_log = KEYS[18], outbox = KEYS[19], reservations = KEYS[20], channel = ARGV[3]},
  ARGV[1], ARGV[2], ts)
redis.call('HSET', KEYS[1], 'pack_id', ARGV[4], 'pack_version', ARGV[5])
if marker then
  return {'ok', ARGV[1], ARGV[2], jint(ts), 0}
end

for i = 0, n_products - 1 do
  local sku, meta, price, add = ARGV[7 + i * 4], ARGV[8 + i * 4], ARGV[9 + i * 4], ARGV[10 + i * 4]
  if meta ~= '' then
    redis.call('HSET', KEYS[2], sku, meta)
  end
  if price ~= '' then
    redis.call('HSET', KEYS[3], sku, price)
  end
  local units = tonumber(add ~= '' and add or '0')
  local left = redis.call('HINCRBY', KEYS[4], sku, units)
  redis.call('HINCRBY', KEYS[5], sku, units)
  emit(KEYS[7], KEYS[8], ARGV[3], 'stock:' .. sku,
    stock_body(sku, left, tonumber(redis.call('HGET', KEYS[6], sku) or '0')), ts)
end
-- the queued offers of earlier sessions are history now
for _, qid in ipairs(redis.call('HKEYS', KEYS[14])) do
  local q = cjson.decode(redis.call('HGET', KEYS[14], qid))
  if q.session_id ~= ARGV[1] then
    redis.call('HDEL', KEYS[14], qid)
    redis.call('ZREM', KEYS[15], qid)
  end
end
for i = 0, n_offers - 1 do
  local b = o + 1 + i * 6
  local qid = field .. ':' .. jint(i)
  local at = ts + tonumber(ARGV[b + 5])
  redis.call('HSET', KEYS[14], qid, cjson.encode({
    kind = 'offer', pack_id = ARGV[4], version = ARGV[5], session_id = ARGV[1], sku = ARGV[b],
    price = ARGV[b + 1], qty = ARGV[b + 2], per_user_limit = ARGV[b + 3],
    duration_ms = ARGV[b + 4], at = jint(at), status = 'queued'}))
  redis.call('ZADD', KEYS[15], at, qid)
end
for i = 0, n_groups - 1 do
  local b = gi + 1 + i * 8
  local qid = field .. ':g' .. jint(i)
  local at = ts + tonumber(ARGV[b + 7])
  redis.call('HSET', KEYS[14], qid, cjson.encode({
    kind = 'group', pack_id = ARGV[4], version = ARGV[5], session_id = ARGV[1],
    sku = ARGV[b], price = ARGV[b + 1], metric = ARGV[b + 2], threshold = ARGV[b + 3],
    cap = ARGV[b + 4], qty = ARGV[b + 4], per_user_limit = ARGV[b + 5],
    duration_ms = ARGV[b + 6], at = jint(at), status = 'queued'}))
  redis.call('ZADD', KEYS[15], at, qid)
end
redis.call('HSET', KEYS[13], field, 'applied:' .. ARGV[1])
return {'ok', ARGV[1], ARGV[2], jint(ts), 1}
