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
