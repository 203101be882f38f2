-- chain_count.lua: a member's order in a `payment: required` room changed in its room
-- (another slot), and the deal learns it here, once per order and kind (the relay
-- replays a room's events until they are acknowledged):
--   'paid'    the member paid: their units count (the deal may succeed with them);
--             paid after the deal failed or was cancelled, or after its deadline while
--             it was still open (it fails now): the reply says refund.
--   'release' the member's unpaid order ended (expired, cancelled): while the deal
--             takes joins, its units go back to the deal's stock.
--
-- KEYS[1] group hash  KEYS[2] members hash  KEYS[3] counted hash  KEYS[4] done hash
-- (order_id|kind -> outcome)
-- ARGV[1] kind  ARGV[2] order_id  ARGV[3] user  ARGV[4] qty
--
-- Reply: 'counted' | 'refund' | 'released' | 'kept' (the deal is over: nothing to give
-- back to) | 'unknown' (no such deal).

local done_field = ARGV[2] .. '|' .. ARGV[1]
local earlier = redis.call('HGET', KEYS[4], done_field)
if earlier then
  return earlier
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'unknown'
end
local ts = now_ms()
local user, qty = ARGV[3], tonumber(ARGV[4])
close_chain_if_due(KEYS[1], ts)
local g = redis.call('HMGET', KEYS[1], 'status', 'closed_at')
local outcome
if ARGV[1] == 'paid' then
  if g[1] == 'failed' or g[1] == 'cancelled' then
    outcome = 'refund'
  else
    count_chain_member(KEYS[1], KEYS[3], user, qty, ts)
    outcome = 'counted'
  end
elseif (g[1] == 'open' or g[1] == 'succeeded') and not g[2] then
  redis.call('HINCRBY', KEYS[1], 'left', qty)
  redis.call('HINCRBY', KEYS[2], user, -qty)
  redis.call('HSET', KEYS[1], 'dirty', '1')
  outcome = 'released'
else
  outcome = 'kept'
end
redis.call('HSET', KEYS[4], done_field, outcome)
return outcome
