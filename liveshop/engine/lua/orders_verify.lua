-- orders_verify.lua: pickup verification at the counter (核销), by code or by the QR's
-- order id (its HMAC already checked).
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua.
-- ARGV[4] code or ''  ARGV[5] order_id or ''  ARGV[6] staff user id
-- ARGV[7] misses before a lock  ARGV[8] miss window (ms)  ARGV[9] lock (ms)
-- ARGV[10] how long a picked-up order keeps its code (ms)  ARGV[11] spec ready -> picked_up
--
-- Reply: {'verified', json} | {'already', verified_at, verified_by}
--      | {'not_found'} | {'not_ready', state} | {'locked', ms left}
-- `not_found` is the answer for a code never issued and for another store's code alike,
-- and counts as a miss of this staff user in this room; the lock then refuses every try.

local ts = now_ms()
local staff = ARGV[6]
local who = O.prefix .. 'verify:' .. #staff .. ':' .. staff
local locked = redis.call('PTTL', who .. ':lock')
if locked > 0 then
  return {'locked', locked}
end
local id = ARGV[5]
if ARGV[4] ~= '' then
  id = redis.call('HGET', O.codes, ARGV[4]) or ''
end
local o = nil
if id ~= '' then
  o = load_order(id)
end
if o == nil or (ARGV[4] ~= '' and o.pickup_code ~= ARGV[4]) then
  local misses = redis.call('INCR', who .. ':misses')
  if misses == 1 then
    redis.call('PEXPIRE', who .. ':misses', tonumber(ARGV[8]))
  end
  if misses >= tonumber(ARGV[7]) then
    redis.call('SET', who .. ':lock', '1', 'PX', tonumber(ARGV[9]))
    redis.call('DEL', who .. ':misses')
  end
  return {'not_found'}
end
if o.state == 'picked_up' then
  return {'already', o.verified_at, o.verified_by}
end
local spec = parse_spec(ARGV[11])
if not spec.sources[o.state] then
  return {'not_ready', o.state}
end
o.verified_at, o.verified_by = jint(ts), staff
redis.call('ZADD', O.due, ts + tonumber(ARGV[10]), 'code:' .. id)
local json = change(o, spec, 'verify', staff, '', ts)
flush_stock(ts)
return {'verified', json}
