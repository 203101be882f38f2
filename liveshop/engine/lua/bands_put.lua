-- bands_put.lua: HQ's price bands resolved for one room, copied into the room's slot
-- (commerce.price_bands), where every price path's script reads them (out_of_band in
-- _prelude.lua).
--
-- KEYS[1] the room's bands hash (sku -> "<floor>:<ceiling>:<version>"; empty floor and
-- ceiling: no band)
-- ARGV[1] version  ARGV[2..] pairs: sku, "<floor>:<ceiling>" (or ":" for none)
--
-- A copy is written only if its version is not older than the SKU's copy there: of two
-- HQ edits racing, the later one's copy stays. Reply: how many SKUs were written.

local version = tonumber(ARGV[1])
local written = 0
for i = 2, #ARGV, 2 do
  local sku, band = ARGV[i], ARGV[i + 1]
  local stored = redis.call('HGET', KEYS[1], sku)
  local stored_version = stored and tonumber(string.match(stored, ':(%d+)$')) or -1
  if version >= stored_version then
    redis.call('HSET', KEYS[1], sku, band .. ':' .. jint(version))
    written = written + 1
  end
end
return written
