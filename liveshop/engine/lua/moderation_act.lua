-- moderation_act.lua: one moderation action (commerce.moderation), decided and written
-- in the room's slot, announced on the room channel, and logged.
--
-- KEYS[1] mod (hash: mute:<u>, kick:<u> until ms; ban:<u>; mod:<u>; mods; slow;
--         slow:<u>; words_v; dev:<device> "<until>|<action>|<user>")
-- KEYS[2] words (set)  KEYS[3] log (stream)  KEYS[4] seq  KEYS[5] history
-- KEYS[6] removed (zset of deleted messages' seqs: a resume leaves them out)
-- ARGV[1] action  ARGV[2] actor  ARGV[3] '1' when the actor is the host (broadcaster, HQ)
-- ARGV[4] user  ARGV[5] msg_id  ARGV[6] seconds  ARGV[7] reason  ARGV[8] channel
-- ARGV[9..] words
-- Reply: 'ok' or the refusal's reason (forbidden, not_found, out_of_range).
-- The ranges and the fields each action needs were checked by commerce.moderation.

local mod, words_key, log_key, seq_key, history = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local action, actor, host, user = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local msg_id, seconds, reason, channel = ARGV[5], tonumber(ARGV[6]) or 0, ARGV[7], ARGV[8]
local MAX_WORDS, MAX_MODS, LOG_MAX = 500, 20, 10000
local now = now_ms()

if not host then
  if redis.call('HEXISTS', mod, 'mod:' .. actor) == 0 then
    return 'forbidden'
  end
  if action == 'appoint' or action == 'dismiss' then
    return 'forbidden'  -- moderators cannot appoint
  end
  if user ~= '' and redis.call('HEXISTS', mod, 'mod:' .. user) == 1 then
    return 'forbidden'  -- nor act on another moderator
  end
end

-- the user's sockets, on every process ("0 @ <len>:<user><json>", as lua/_orders.lua)
local function notify(what, until_ms)
  local json = '{"type":"moderation","action":' .. jstr(what)
  if until_ms then
    json = json .. ',"until":' .. jint(until_ms)
  end
  if reason ~= '' then
    json = json .. ',"reason":' .. jstr(reason)
  end
  redis.call('__PUBLISH__', channel, '0 @ ' .. #user .. ':' .. user .. json .. '}')
end

local function forget_devices()
  local all = redis.call('HGETALL', mod)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 4) == 'dev:' and string.match(all[i + 1], '|([^|]*)$') == user then
      redis.call('HDEL', mod, all[i])
    end
  end
end

if action == 'delete' then
  local id = tonumber(msg_id)
  if id == nil or id < 1 or id > tonumber(redis.call('GET', seq_key) or '0') then
    return 'not_found'
  end
  -- a viewer who resumes never receives it (rooms_snapshot.lua skips it); the entry
  -- stays in the history so that the stream has no hole (a hole reads as trimmed)
  redis.call('ZADD', KEYS[6], id, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. jint(id - 2 * HISTORY_MAX))
  emit(seq_key, history, channel, '-', '{"type":"chat_removed","msg_id":' .. jstr(msg_id), now)
elseif action == 'mute' then
  local until_ms = now + seconds * 1000
  redis.call('HSET', mod, 'mute:' .. user, until_ms)
  notify('mute', until_ms)
elseif action == 'unmute' then
  redis.call('HDEL', mod, 'mute:' .. user)
  notify('unmute')
elseif action == 'kick' then
  local until_ms = now + seconds * 1000
  redis.call('HSET', mod, 'kick:' .. user, until_ms)
  notify('kick', until_ms)
elseif action == 'ban' then
  redis.call('HSET', mod, 'ban:' .. user, now)
  notify('ban')
  emit(seq_key, history, channel, '-', '{"type":"chat_removed","user":' .. jstr(user), now)
elseif action == 'unban' then
  redis.call('HDEL', mod, 'ban:' .. user, 'kick:' .. user)
  forget_devices()
  notify('unban')
elseif action == 'slow' then
  local field = user == '' and 'slow' or ('slow:' .. user)
  if seconds == 0 then
    redis.call('HDEL', mod, field)
  else
    redis.call('HSET', mod, field, seconds)
  end
elseif action == 'words_add' or action == 'words_remove' then
  local terms = {}
  for i = 9, #ARGV do
    terms[#terms + 1] = ARGV[i]
  end
  if action == 'words_add' then
    local new = 0
    for _, term in ipairs(terms) do
      new = new + (1 - redis.call('SISMEMBER', words_key, term))
    end
    if redis.call('SCARD', words_key) + new > MAX_WORDS then
      return 'out_of_range'
    end
    redis.call('SADD', words_key, unpack(terms))
  else
    redis.call('SREM', words_key, unpack(terms))
  end
  redis.call('HINCRBY', mod, 'words_v', 1)  -- every process rebuilds at its next chat
elseif action == 'appoint' then
  if redis.call('HEXISTS', mod, 'mod:' .. user) == 0 then
    if tonumber(redis.call('HGET', mod, 'mods') or '0') >= MAX_MODS then
      return 'out_of_range'
    end
    redis.call('HSET', mod, 'mod:' .. user, now)
    redis.call('HINCRBY', mod, 'mods', 1)
  end
  notify('appoint')
elseif action == 'dismiss' then
  if redis.call('HDEL', mod, 'mod:' .. user) == 1 then
    redis.call('HINCRBY', mod, 'mods', -1)
  end
  notify('dismiss')
else
  return 'bad_message'
end

local words = {}
for i = 9, #ARGV do
  words[#words + 1] = ARGV[i]
end
redis.call('XADD', log_key, 'MAXLEN', '~', LOG_MAX, '*', 'at', now, 'actor', actor,
  'action', action, 'user', user, 'msg_id', msg_id, 'seconds', ARGV[6], 'reason', reason,
  'words', table.concat(words, '\n'))
return 'ok'
