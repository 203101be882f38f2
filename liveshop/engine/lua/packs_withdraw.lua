-- packs_withdraw.lua: HQ withdrew a pack version: it is never applied to this room again
-- and its offers still queued here are cancelled (live ones run out).
--
-- KEYS[1] packs  KEYS[2] queued  KEYS[3] queued_due
-- ARGV[1] "<pack_id>:<version>"
--
-- Reply: the number of queued offers cancelled.

local cancelled = 0
redis.call('HSET', KEYS[1], ARGV[1], 'withdrawn')
local prefix = ARGV[1] .. ':'
for _, qid in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(qid, 1, #prefix) == prefix then
    local q = cjson.decode(redis.call('HGET', KEYS[2], qid))
    if q.status == 'queued' then
      q.status = 'withdrawn'
      redis.call('HSET', KEYS[2], qid, cjson.encode(q))
      redis.call('ZREM', KEYS[3], qid)
      cancelled = cancelled + 1
    end
  end
end
return cancelled
