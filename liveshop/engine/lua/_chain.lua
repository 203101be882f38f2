-- _chain.lua: prepended (after _prelude.lua) to the scripts of cross-store deals
-- (chain_*), which run on the deal's own slot. Not a script itself.

-- Counts a member's units toward the deal (at the join, or once paid in a
-- `payment: required` room); at the threshold the deal succeeds, and a succeeded deal
-- with no units left takes no more joins. Returns the deal's status after it.
local function count_chain_member(group, counted, user, qty, ts)
  redis.call('HINCRBY', counted, user, qty)
  local units = redis.call('HINCRBY', group, 'counted_units', qty)
  local g = redis.call('HMGET', group, 'metric', 'threshold', 'status', 'left')
  local value = units
  if g[1] ~= 'units' then
    value = redis.call('HLEN', counted)
  end
  local status = g[3]
  if status == 'open' and value >= tonumber(g[2]) then
    status = 'succeeded'
    redis.call('HSET', group, 'status', status, 'succeeded_at', jint(ts))
  end
  if tonumber(g[4]) == 0 and status == 'succeeded' then
    redis.call('HSET', group, 'closed_at', jint(ts))  -- full: its joins are over
  end
  redis.call('HSET', group, 'value', jint(value), 'dirty', '1')
  return status
end

-- The guarded end at the deadline, also run by a count or a join that comes after it
-- before any relay did: only if still running and now >= ends_at.
local function close_chain_if_due(group, ts)
  local g = redis.call('HMGET', group, 'status', 'ends_at', 'closed_at')
  if not g[1] or g[3] or ts < tonumber(g[2]) then
    return false
  end
  if g[1] == 'open' then
    redis.call('HSET', group, 'status', 'failed')
  end
  redis.call('HSET', group, 'closed_at', jint(ts), 'dirty', '1')
  return true
end
