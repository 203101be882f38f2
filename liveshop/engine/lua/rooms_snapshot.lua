-- rooms_snapshot.lua: a room's whole state and its stream position, read atomically,
-- plus the missed messages when a client resumes.
--
-- KEYS[1] room hash  KEYS[2] products hash  KEYS[3] price hash  KEYS[4] stock hash
-- KEYS[5] seq        KEYS[6] history        KEYS[7] live offers hash
-- KEYS[8] presence hash  KEYS[9] presence expiry zset  KEYS[10] the room's groups hash
-- KEYS[11] removed chat messages (zset of seq, lua/moderation_act.lua): not resent
-- KEYS[12] the room's polls hash  KEYS[13] its draws hash (ids only: most rooms have
--          none, and the caller reads the details only when there are some)
-- KEYS[14] the reservations set (counted)
-- ARGV[1] resume_from seq or ''   ARGV[2] offer key prefix  ARGV[3] group key prefix
--
-- Reply: {seq, room, products, prices, stock, offers, viewers, resumed, missed, groups,
--         poll ids, draw ids, reservations}
-- where room/products/prices/stock are flat HGETALL arrays, offers a list of flat
-- offer hashes (each with its id appended), resumed 1 when missed holds every message
-- after resume_from (a list of JSON texts), else 0.

local seq = tonumber(redis.call('GET', KEYS[5]) or '0')
local offers = {}
for _, offer_id in ipairs(redis.call('HKEYS', KEYS[7])) do
  local o = redis.call('HGETALL', ARGV[2] .. offer_id)
  table.insert(o, 'offer_id')
  table.insert(o, offer_id)
  table.insert(offers, o)
end

local groups = {}
for _, group_id in ipairs(redis.call('HKEYS', KEYS[10])) do
  local g = redis.call('HGETALL', ARGV[3] .. group_id)
  table.insert(g, 'group_id')
  table.insert(g, group_id)
  table.insert(groups, g)
end

local now = now_ms()
local viewers = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[9], now, '+inf')) do
  viewers = viewers + tonumber(redis.call('HGET', KEYS[8], id) or '0')
end

local resumed, missed = 0, {}
if ARGV[1] ~= '' then
  local from = tonumber(ARGV[1])
  if from == seq then
    resumed = 1
  elseif from < seq then
    local entries = redis.call('XRANGE', KEYS[6], jint(from + 1) .. '-0', '+')
    if #entries > 0 and entries[1][1] == jint(from + 1) .. '-0' then
      resumed = 1
      local removed = redis.call('ZCARD', KEYS[11]) > 0
      for _, e in ipairs(entries) do
        if not (removed and redis.call('ZSCORE', KEYS[11], string.match(e[1], '^%d+'))) then
          missed[#missed + 1] = e[2][2]
        end
      end
    end
  end
end

return {
  seq,
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  offers,
  viewers,
  resumed,
  missed,
  groups,
  redis.call('HKEYS', KEYS[12]),
  redis.call('HKEYS', KEYS[13]),
  redis.call('SCARD', KEYS[14]),
}
