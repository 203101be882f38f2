-- rooms_emit.lua: put a message that changes no state (chat) on the room stream.
--
-- KEYS[1] seq  KEYS[2] history
-- ARGV[1] coalesce key ('-' for none)  ARGV[2] JSON body without closing brace
-- ARGV[3] channel
-- Reply: the message's seq.

return emit(KEYS[1], KEYS[2], ARGV[3], ARGV[1], ARGV[2], now_ms())
