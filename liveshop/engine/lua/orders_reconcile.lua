-- orders_reconcile.lua: one room's side of the reconciliation, read atomically: the
-- units the engine sold per SKU, and the units of accepted orders still in the outbox
-- (not yet stored: the persister deletes what it has stored), net of later moves.
--
-- KEYS[1] sold hash  KEYS[2] outbox stream
-- ARGV[1] at most this many outbox entries are read (a long outbox: see `complete`)
-- Reply: {sold, unstored, outbox_len, oldest_id, complete}
--   sold, unstored: flat {sku, units, ...}
--   outbox_len: XLEN of the outbox; oldest_id: its first entry's id, or ''
--   complete: 1 when every outbox entry was read, 0 when `unstored` is a lower bound

local sold = redis.call('HGETALL', KEYS[1])
local len = redis.call('XLEN', KEYS[2])
local limit = tonumber(ARGV[1])
local entries = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', limit)
local units = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  -- an entry's `sold` is the units it moved into (or out of, < 0) sold; a v1 entry
  -- (no `sold`) sold its qty; refunds have no sku
  local sku, qty, sold_delta
  for i = 1, #fields, 2 do
    local f = fields[i]
    if f == 'sku' then sku = fields[i + 1]
    elseif f == 'qty' then qty = fields[i + 1]
    elseif f == 'sold' then sold_delta = fields[i + 1] end
  end
  qty = sold_delta or qty
  if sku and qty then units[sku] = (units[sku] or 0) + tonumber(qty) end
end
local unstored = {}
for sku, n in pairs(units) do
  unstored[#unstored + 1] = sku
  unstored[#unstored + 1] = tostring(n)
end
local oldest = ''
if #entries > 0 then oldest = entries[1][1] end
return {sold, unstored, len, oldest, (len <= limit) and 1 or 0}
