-- league_row.lua: one room's row of HQ's league (read only).
--
-- KEYS[1] room  KEYS[2] stats  KEYS[3] buyers  KEYS[4] audience  KEYS[5] held
-- KEYS[6] groups  KEYS[7] presence  KEYS[8] presence expiry
-- ARGV[1] group key prefix ("ls:{r}:group:")
--
-- Reply: {name, region, live, viewers, peak, orders, units, gmv, buyers, audience, holds,
--         groups_open, hints, pack_id}
-- Viewers are summed from the processes' reports that have not expired, so a process
-- that died leaves the figure after the presence TTL even when no other process reports.

local now = now_ms()
local r = redis.call('HMGET', KEYS[1], 'name', 'region', 'live', 'peak', 'pack_id')
local viewers = 0
local reports = redis.call('HGETALL', KEYS[7])
for i = 1, #reports, 2 do
  local expiry = tonumber(redis.call('ZSCORE', KEYS[8], reports[i]) or '0')
  if expiry > now then
    viewers = viewers + tonumber(reports[i + 1])
  end
end
local orders, units, gmv, hints = 0, 0, 0, 0
local stats = redis.call('HGETALL', KEYS[2])
for i = 1, #stats, 2 do
  local k, v = stats[i], tonumber(stats[i + 1]) or 0
  local head = string.sub(k, 1, 2)
  if k == 'orders' then
    orders = v
  elseif k == 'hints' then
    hints = v
  elseif head == 'u:' then
    units = units + v
  elseif head == 'g:' then
    gmv = gmv + v
  end
end
local holds = 0
for _, v in ipairs(redis.call('HVALS', KEYS[5])) do
  holds = holds + tonumber(v)
end
local open = 0
local groups = redis.call('HGETALL', KEYS[6])
for i = 1, #groups, 2 do
  -- an open group's deadline is ahead (or just behind, until the sweep closes it)
  if tonumber(groups[i + 1]) > now - 5000 then
    if redis.call('HGET', ARGV[1] .. groups[i], 'status') == 'open' then
      open = open + 1
    end
  end
end
local live = r[3] == '1'
return {r[1] or '', r[2] or '', live and 1 or 0, viewers, live and tonumber(r[4] or '0') or 0,
  orders, units, gmv, redis.call('SCARD', KEYS[3]), redis.call('SCARD', KEYS[4]), holds, open,
  hints, r[5] or ''}
