-- _prelude.lua: prepended to every script by liveshop/scripts.py. Not a script itself.
--
-- emit() is the only way a message enters a room's stream: it takes the next seq,
-- keeps the message (field m) and its coalesce key (field k) in the capped history under
-- stream id <seq>-0 (so a resume is one XRANGE), and publishes "<seq> <coalesce-key> <json>" on the room channel. Running
-- inside a script makes seq order, history order and publish order one and the same.
-- `body` is a JSON object without its closing brace; emit() appends seq and ts.

local HISTORY_MAX = 2000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function jint(n)
  return string.format('%d', n)
end

local function jstr(s)
  return cjson.encode(s)
end

local function emit(seq_key, history_key, channel, ckey, body, ts)
  local seq = jint(redis.call('INCR', seq_key))
  local json = body .. ',"seq":' .. seq .. ',"ts":' .. jint(ts) .. '}'
  redis.call('XADD', history_key, 'MAXLEN', '~', HISTORY_MAX, seq .. '-0', 'm', json, 'k', ckey)
  redis.call('__PUBLISH__', channel, seq .. ' ' .. ckey .. ' ' .. json)
  return tonumber(seq)
end

-- `held` (units in unpaid orders and groups' shelves) is sent only when it is not 0,
-- so a v1 room's stock messages are byte for byte what they were.
local function stock_body(sku, left, held)
  local body = '{"type":"stock","sku":' .. jstr(sku) .. ',"left":' .. jint(left)
  if held and held ~= 0 then
    body = body .. ',"held":' .. jint(held)
  end
  return body
end

local OFFER_FIELDS = {'sku', 'price', 'qty', 'left', 'per_user_limit', 'starts_at', 'ends_at', 'status'}

local function offer_body(offer_key, offer_id)
  local o = redis.call('HMGET', offer_key, unpack(OFFER_FIELDS))
  return '{"type":"offer","offer_id":' .. jstr(offer_id) .. ',"sku":' .. jstr(o[1])
    .. ',"price":' .. o[2] .. ',"qty":' .. o[3] .. ',"left":' .. o[4]
    .. ',"per_user_limit":' .. o[5] .. ',"starts_at":' .. o[6] .. ',"ends_at":' .. o[7]
    .. ',"status":' .. jstr(o[8])
end

-- Ends a live offer (status 'ended' or 'sold_out') and announces it.
local function close_offer(offers_key, offer_prefix, offer_id, status, seq_key, history_key, channel, ts)
  local key = offer_prefix .. offer_id
  redis.call('HSET', key, 'status', status)
  redis.call('HDEL', offers_key, offer_id)
  emit(seq_key, history_key, channel, 'offer:' .. offer_id, offer_body(key, offer_id), ts)
end

-- The one price guard of every price path (a product's price, an offer's, a group's;
-- a pack's go through these): the band HQ resolved for this room and SKU, copied into
-- the room's bands hash by commerce.price_bands as "<floor>:<ceiling>:<version>" (empty
-- floor and ceiling: no band). Returns nil when the price may be set, else the band's
-- {floor, ceiling}.
local function out_of_band(bands_key, sku, price)
  local band = redis.call('HGET', bands_key, sku)
  if not band then
    return nil
  end
  local floor, ceiling = string.match(band, '^(%d*):(%d*):')
  if floor == nil or floor == '' then
    return nil
  end
  local p = tonumber(price)
  if p < tonumber(floor) or p > tonumber(ceiling) then
    return {floor, ceiling}
  end
  return nil
end

-- Opens a flash offer on one SKU (offer_start, and a campaign pack's queued offer when
-- its time comes). The offer sells from the SKU's own stock; it may not promise more
-- than is stocked. K: room, price, stock, offers, seq, history, bands (keys); channel,
-- offer_prefix, session_offers (the session's list, for the review). Reply: {'ok', starts_at, ends_at} | {'not_live'} | {'unknown_sku'}
-- | {'busy', offer_id} | {'short_stock', stock} | {'out_of_band', floor, ceiling}.
local function start_offer(K, offer_id, sku, price, qty, duration_ms, per_user_limit, ts)
  if redis.call('HGET', K.room, 'live') ~= '1' then
    return {'not_live'}
  end
  if not redis.call('HGET', K.price, sku) then
    return {'unknown_sku'}
  end
  local band = out_of_band(K.bands, sku, price)
  if band then
    return {'out_of_band', band[1], band[2]}
  end
  for _, id in ipairs(redis.call('HKEYS', K.offers)) do
    local o = redis.call('HMGET', K.offer_prefix .. id, 'sku', 'ends_at')
    if ts >= tonumber(o[2]) then
      close_offer(K.offers, K.offer_prefix, id, 'ended', K.seq, K.history, K.channel, ts)
    elseif o[1] == sku then
      return {'busy', id}
    end
  end
  local stock = tonumber(redis.call('HGET', K.stock, sku) or '0')
  if stock < qty then
    return {'short_stock', stock}
  end
  local key = K.offer_prefix .. offer_id
  local ends_at = ts + duration_ms
  redis.call('HSET', key, 'sku', sku, 'price', price, 'qty', jint(qty), 'left', jint(qty),
    'per_user_limit', per_user_limit, 'starts_at', jint(ts), 'ends_at', jint(ends_at),
    'status', 'live')
  redis.call('HSET', K.offers, offer_id, sku)
  redis.call('RPUSH', K.session_offers, offer_id)
  emit(K.seq, K.history, K.channel, 'offer:' .. offer_id, offer_body(key, offer_id), ts)
  return {'ok', jint(ts), jint(ends_at)}
end

-- Opens a broadcast session (场次): resets the session's totals and announces it.
-- K: room, seq, history, stats, buyers, audience, minutes, session_offers, hints_log
-- (keys); channel.
local function open_session(K, session_id, title, ts)
  redis.call('DEL', K.stats, K.buyers, K.audience, K.minutes, K.session_offers, K.hints_log)
  local viewers = redis.call('HGET', K.room, 'viewers_sent') or '0'
  redis.call('HSET', K.room, 'live', '1', 'session_id', session_id, 'title', title,
    'started_at', jint(ts), 'peak', viewers, 'peak_sent', '-1')
  redis.call('HDEL', K.room, 'pack_id', 'pack_version')
  local body = '{"type":"live","live":true,"session_id":' .. jstr(session_id)
  if title ~= '' then
    body = body .. ',"title":' .. jstr(title)
  end
  emit(K.seq, K.history, K.channel, '-', body, ts)
  -- the `live.started` webhook, with who reserved this live, goes out through the
  -- room's outbox (the persister writes it before it acks): no gap after this step
  local reserved = redis.call('SMEMBERS', K.reservations)
  table.sort(reserved)
  -- the reservations and the announced time were for this live: the next is a new one
  redis.call('DEL', K.reservations)
  redis.call('HDEL', K.room, 'next_live_at', 'next_title')
  redis.call('XADD', K.outbox, '*', 'kind', 'live', 'event', 'live.started',
    'session_id', session_id, 'title', title, 'at', jint(ts),
    'reserved', #reserved > 0 and cjson.encode(reserved) or '[]')
end

-- A poll or draw leaves its room's list a day after its end, and its keys a week later.
local LISTED_MS = 86400000
local RETIRED_S = 7 * 86400

-- A poll's message body (polls_*.lua): counts in the order of its options.
local function poll_body(poll_key, poll_id)
  local p = redis.call('HMGET', poll_key, 'question', 'options', 'n', 'ends_at', 'status')
  local counts = {}
  for i = 0, tonumber(p[3]) - 1 do
    counts[#counts + 1] = redis.call('HGET', poll_key, 'c' .. i) or '0'
  end
  return '{"type":"poll","poll_id":' .. jstr(poll_id) .. ',"question":' .. jstr(p[1])
    .. ',"options":' .. p[2] .. ',"counts":[' .. table.concat(counts, ',') .. ']'
    .. ',"ends_at":' .. p[4] .. ',"status":' .. jstr(p[5])
end

-- A lucky draw's message body (draws_*.lua); the seed and winners only once drawn.
local function draw_body(draw_key, draw_id)
  local d = redis.call('HMGET', draw_key, 'prize', 'winners_count', 'entrants', 'ends_at',
    'status', 'commitment', 'eligible', 'seed', 'winners')
  local body = '{"type":"draw","draw_id":' .. jstr(draw_id) .. ',"prize":' .. jstr(d[1])
    .. ',"winners_count":' .. d[2] .. ',"entrants":' .. d[3] .. ',"ends_at":' .. d[4]
    .. ',"status":' .. jstr(d[5]) .. ',"commitment":' .. jstr(d[6])
    .. ',"eligible":' .. jstr(d[7])
  if d[5] == 'drawn' then
    body = body .. ',"seed":' .. jstr(d[8]) .. ',"winners":' .. d[9]
  end
  return body
end
