-- presence_report.lua: one process reports its local viewer count for a room.
--
-- KEYS[1] presence hash (process -> count)  KEYS[2] presence expiry zset
-- KEYS[3] room hash  KEYS[4] seq  KEYS[5] history  KEYS[6] session audience set
-- KEYS[7] the session's minutes hash (minute -> peak viewers, for the review)
-- ARGV[1] process id  ARGV[2] local count  ARGV[3] ttl (ms)  ARGV[4] channel
-- ARGV[5..] viewer ids new to the session's audience (distinct viewers, for conversion)
--
-- Reply: {total, peak}. The room's count is the sum over processes whose report has
-- not expired; a process that stops reporting drops out after ttl by itself. A
-- `viewers` message goes out when the figures changed, at most once a second.

local now = now_ms()
for i = 5, #ARGV, 1000 do  -- unpack() has a stack limit: add in chunks
  redis.call('SADD', KEYS[6], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #dead > 0 then
  redis.call('ZREM', KEYS[2], unpack(dead))
  redis.call('HDEL', KEYS[1], unpack(dead))
end
if ARGV[2] == '0' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
end
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  total = total + tonumber(v)
end

local r = redis.call('HMGET', KEYS[3], 'peak', 'viewers_sent', 'viewers_sent_at', 'peak_sent',
  'live', 'started_at')
if r[5] == '1' then
  local minute = jint(math.floor((now - tonumber(r[6] or now)) / 60000))
  if total > tonumber(redis.call('HGET', KEYS[7], minute) or '-1') then
    redis.call('HSET', KEYS[7], minute, jint(total))
  end
end
local peak = tonumber(r[1] or '0')
if total > peak then
  peak = total
  redis.call('HSET', KEYS[3], 'peak', jint(peak))
end
local changed = total ~= tonumber(r[2] or '-1') or peak ~= tonumber(r[4] or '-1')
if changed and now - tonumber(r[3] or '0') >= 1000 then
  redis.call('HSET', KEYS[3], 'viewers_sent', jint(total), 'viewers_sent_at', jint(now), 'peak_sent', jint(peak))
  emit(KEYS[4], KEYS[5], ARGV[4], 'viewers',
    '{"type":"viewers","count":' .. jint(total) .. ',"peak":' .. jint(peak), now)
end
return {total, peak}
