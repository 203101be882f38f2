-- moderation_chat.lua: a chat message, put on the room stream only if the room's
-- moderation lets this user speak now (checked in the same step as the write, so a
-- mute, kick or ban applies to the very next message on every process).
--
-- KEYS[1] seq  KEYS[2] history  KEYS[3] mod (see moderation_act.lua)  KEYS[4] room hash
-- ARGV[1] the chat's JSON without its closing brace ({"type":"chat","user":..,"text":..)
-- ARGV[2] user  ARGV[3] '1' for the host  ARGV[4] channel
-- ARGV[5] the room word list's version the caller's filter was built from
-- ARGV[6] the room's key prefix: who chatted in a session (<prefix>chatters:<session>,
--         a lucky draw's `chatted` eligibility) is kept for two days
-- Reply: {'ok', seq} | {'banned'} | {'kicked', until} | {'muted', until}
--        | {'slow', next allowed ms} | {'stale', version}

local seq_key, history, mod = KEYS[1], KEYS[2], KEYS[3]
local user, host = ARGV[2], ARGV[3] == '1'
local m = redis.call('HMGET', mod, 'ban:' .. user, 'kick:' .. user, 'mute:' .. user,
  'words_v', 'slow', 'slow:' .. user, 'last:' .. user, 'mod:' .. user)
local now = now_ms()
if m[1] then
  return {'banned'}
end
if m[2] and tonumber(m[2]) > now then
  return {'kicked', m[2]}
end
if m[3] and tonumber(m[3]) > now then
  return {'muted', m[3]}
end
-- a mute or kick that ran out goes when its user next speaks (the hash would keep
-- every user ever muted otherwise)
if m[2] then
  redis.call('HDEL', mod, 'kick:' .. user)
end
if m[3] then
  redis.call('HDEL', mod, 'mute:' .. user)
end
if (m[4] or '0') ~= ARGV[5] then
  return {'stale', m[4] or '0'}
end
local slow = math.max(tonumber(m[5] or '0'), tonumber(m[6] or '0'))
if slow > 0 and not host then
  local last = tonumber(m[7] or '0')
  if now - last < slow * 1000 then
    return {'slow', jint(last + slow * 1000)}
  end
  redis.call('HSET', mod, 'last:' .. user, now)
end
local session = redis.call('HGET', KEYS[4], 'session_id')
if session then
  local chatters = ARGV[6] .. 'chatters:' .. session
  redis.call('SADD', chatters, user)
  redis.call('EXPIRE', chatters, 172800)
end
-- msg_id is the seq emit() gives this message: unique in the room, and the history's id
local body = ARGV[1] .. ',"msg_id":"' .. jint(tonumber(redis.call('GET', seq_key) or '0') + 1) .. '"'
if host then
  body = body .. ',"badge":"host"'
elseif m[8] then
  body = body .. ',"badge":"mod"'
end
return {'ok', emit(seq_key, history, ARGV[4], '-', body, now)}
