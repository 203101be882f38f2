-- groups_cancel.lua: the broadcaster fails an open group on purpose: `cancelled`,
-- every member's order cancelled (reason group_failed, units back), the shelf's rest
-- back. A group that has succeeded or ended is not cancelled.
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua.
-- ARGV[4] group_id  ARGV[5] spec pending_group -> accepted  ARGV[6] -> cancelled
--
-- Reply: {'ok'} | {'not_open', status} | {'not_found'}

local ts = now_ms()
local id = ARGV[4]
local status = redis.call('HGET', group_key(id), 'status')
if not status then
  return {'not_found'}
end
if status ~= 'open' then
  return {'not_open', status}
end
end_group(id, 'cancelled', parse_spec(ARGV[5]), parse_spec(ARGV[6]), ts)
flush_stock(ts)
return {'ok'}
