-- _orders.lua: prepended (after _prelude.lua) to the scripts that create or move orders
-- (inventory_buy and orders_*). Not a script itself.
--
-- Every such script takes the same first KEYS and ARGV (commerce.order_book.order_call):
--   KEYS[1] stock hash  KEYS[2] held hash   KEYS[3] sold hash    KEYS[4] seq
--   KEYS[5] history     KEYS[6] outbox      KEYS[7] due zset     KEYS[8] codes hash
--   KEYS[9] refunds hash KEYS[10] room hash
--   ARGV[1] room_id  ARGV[2] channel  ARGV[3] the room's key prefix 'ls:{room}:'
-- An order is the string <prefix>order:<id>: JSON, keys = the orders table's columns. Every
-- change bumps `version`, appends one outbox entry (kind 'move': the whole order plus the
-- event: from, to, by, actor, reason) and publishes the `order` message to the buyer's
-- sockets ("0 @ <len>:<user><json>" on the room channel: no seq, not in the history).
-- Moves are specs "<from,from>|<to>|<effects>" (R: units back, F: refund if paid) made
-- by commerce.order_states from its table: the table lives in Python only.

local O = {
  stock = KEYS[1], held = KEYS[2], sold = KEYS[3], seq = KEYS[4], history = KEYS[5],
  outbox = KEYS[6], due = KEYS[7], codes = KEYS[8], refunds = KEYS[9], room = KEYS[10],
  room_id = ARGV[1], channel = ARGV[2], prefix = ARGV[3],
}
local ORDER_TTL_S = 30 * 86400  -- an order hash lives this long after its last move

-- States in which an order's units count as sold (the rest: held, or back in stock).
local SOLD = {accepted = true, paid = true, ready = true, out_for_delivery = true,
  picked_up = true, delivered = true, delivery_failed = true}
local TERMINAL = {uncollected = true, delivered = true, delivery_failed = true,
  expired = true, cancelled = true}

local function order_key(id)
  return O.prefix .. 'order:' .. id
end

local function user_key(user, what)
  -- length-prefixed: no user id can forge another's key
  return O.prefix .. 'user:' .. #user .. ':' .. user .. ':' .. what
end

local function load_order(id)
  local packed = redis.call('GET', order_key(id))
  if not packed then
    return nil
  end
  return cjson.decode(packed)
end

local function parse_spec(spec)
  local from, to, effects = string.match(spec, '^([^|]*)|([^|]*)|(.*)$')
  local sources = {}
  for s in string.gmatch(from, '[^,]+') do
    sources[s] = true
  end
  return {sources = sources, target = to,
    release = string.find(effects, 'R', 1, true) ~= nil,
    refund = string.find(effects, 'F', 1, true) ~= nil}
end

local function set(v)
  return v ~= nil and v ~= ''
end

local function order_json(o)
  local f = '{"method":' .. jstr(o.method)
  if set(o.pickup_code) then f = f .. ',"pickup_code":' .. jstr(o.pickup_code) end
  if set(o.pickup_by) then f = f .. ',"pickup_by":' .. o.pickup_by end
  if set(o.address) then f = f .. ',"address":' .. jstr(o.address) end
  if set(o.qr) then f = f .. ',"qr":' .. jstr(o.qr) end
  local j = '{"type":"order","order_id":' .. jstr(o.order_id) .. ',"state":' .. jstr(o.state)
    .. ',"version":' .. o.version .. ',"sku":' .. jstr(o.sku) .. ',"qty":' .. o.qty
    .. ',"unit_price":' .. o.unit_price .. ',"fulfilment":' .. f .. '}'
  if set(o.pay_by) then j = j .. ',"pay_by":' .. o.pay_by end
  if set(o.refund_amount) then
    j = j .. ',"refund":{"amount":' .. o.refund_amount .. ',"state":' .. jstr(o.refund_state) .. '}'
  end
  if set(o.reason) then j = j .. ',"reason":' .. jstr(o.reason) end
  if set(o.group_id) then j = j .. ',"group_id":' .. jstr(o.group_id) end
  if set(o.verified_at) then
    j = j .. ',"verified_at":' .. o.verified_at .. ',"verified_by":' .. jstr(o.verified_by)
  end
  if set(o.delivery_status) then j = j .. ',"delivery_status":' .. jstr(o.delivery_status) end
  if set(o.via) then
    j = j .. ',"via":' .. jstr(o.via) .. ',"store":' .. jstr(o.room_id) .. ',"route":{"distance_m":'
      .. o.route_distance_m .. ',"rule":' .. jstr(o.route_rule) .. '}'
  end
  return j .. ',"created_at":' .. o.created_at .. ',"updated_at":' .. o.updated_at .. '}'
end

local function publish_to_buyer(o, json)
  redis.call('__PUBLISH__', O.channel, '0 @ ' .. #o.user_id .. ':' .. o.user_id .. json)
end

-- Writes o (after a change) and its event: the order (one JSON string: every value a
-- string, empty ones left out), one outbox entry and the buyer's message. The entry has
-- the same five fields every time (a stream stores the names once per node then) and
-- carries the same JSON: the order at this version, and the event.
local function record(o, from, by, actor, reason, ts, sold_delta, kind)
  for k, v in pairs(o) do
    if v == '' then
      o[k] = nil
    end
  end
  local packed = cjson.encode(o)
  redis.call('SET', order_key(o.order_id), packed)
  local event = '{"from":' .. jstr(from) .. ',"by":' .. jstr(by) .. ',"actor":' .. jstr(actor)
    .. ',"reason":' .. jstr(reason) .. '}'
  redis.call('XADD', O.outbox, '*', 'kind', kind, 'sku', o.sku, 'sold', jint(sold_delta),
    'o', packed, 'e', event)
  local json = order_json(o)
  publish_to_buyer(o, json)
  return json
end

local function emit_stock(sku, ts)
  local left = tonumber(redis.call('HGET', O.stock, sku) or '0')
  local held = tonumber(redis.call('HGET', O.held, sku) or '0')
  emit(O.seq, O.history, O.channel, 'stock:' .. sku, stock_body(sku, left, held), ts)
end

-- SKUs whose units moved in this script run: one `stock` message each, at the end
-- (a sweep that expires a thousand holds says each SKU's new figure once).
local MOVED = {}

local function flush_stock(ts)
  for sku in pairs(MOVED) do
    emit_stock(sku, ts)
  end
  MOVED = {}
end

-- A refund, at most one per (order, reason): the ledger row goes out through the outbox.
local function create_refund(o, reason, ts)
  local amount = tonumber(o.qty) * tonumber(o.unit_price)
  if redis.call('HSETNX', O.refunds, o.order_id .. '|' .. reason, 'pending') == 0 then
    return false
  end
  redis.call('XADD', O.outbox, '*', 'kind', 'refund', 'order_id', o.order_id,
    'room_id', O.room_id, 'user_id', o.user_id, 'reason', reason, 'amount', jint(amount),
    'txn_id', o.txn_id or '', 'created_at', jint(ts))
  o.refund_amount = jint(amount)
  o.refund_state = 'pending'
  return true
end

-- An order that is over lives ORDER_TTL_S more, and so does its buyer's index from then
-- (an index entry whose order is gone is skipped by orders_get).
local function retire(o)
  redis.call('EXPIRE', order_key(o.order_id), ORDER_TTL_S)
  redis.call('EXPIRE', user_key(o.user_id, 'orders'), ORDER_TTL_S)
end

local function drop_code(o)
  if set(o.pickup_code) and redis.call('HGET', O.codes, o.pickup_code) == o.order_id then
    redis.call('HDEL', O.codes, o.pickup_code)
  end
end

-- What a cross-store deal must learn of its members' orders in this room ('paid',
-- 'release'): "<kind>|<group_id>|<order_id>|<user>|<qty>", replayed by the relay
-- (commerce.chain_groups) into the deal's slot until acknowledged.
local function chain_event(kind, o)
  redis.call('RPUSH', O.prefix .. 'chain_events',
    kind .. '|' .. o.group_id .. '|' .. o.order_id .. '|' .. o.user_id .. '|' .. o.qty)
end

-- The live session's totals (the room's stats hash, reset by go_live; the same fields
-- inventory_buy writes). A group's sale counts when the group makes it one: a member's
-- units moving into sold (the group succeeding, or a counted member paying).
local function session_count(field, n)
  redis.call('HINCRBY', O.prefix .. 'stats', field, n)
end

local function count_group_sale(o, ts)
  local qty = tonumber(o.qty)
  session_count('orders', 1)
  session_count('u:' .. o.sku, qty)
  session_count('g:' .. o.sku, qty * tonumber(o.unit_price))
  redis.call('HSET', O.prefix .. 'stats', 'last_order_at', jint(ts))
  redis.call('SADD', O.prefix .. 'buyers', o.user_id)
end

-- Moves o to spec.target with the spec's effects; the caller has checked that the move
-- is legal, and calls flush_stock() before it returns. Returns the order's JSON.
local function change(o, spec, by, actor, reason, ts)
  local from, qty, sku = o.state, tonumber(o.qty), o.sku
  local sold_delta, stock_moved = 0, false
  if o.pool == 'chain' then
    -- A cross-store deal's units are its own stock, not this room's shelf; an unpaid
    -- member's end is told to the deal (another slot) through the room's chain events.
    if from == 'awaiting_payment' then
      redis.call('SREM', user_key(o.user_id, 'unpaid'), o.order_id)
      redis.call('ZREM', O.due, 'pay:' .. o.order_id)
      if spec.release then
        chain_event('release', o)
      end
    end
  elseif from == 'awaiting_payment' then
    redis.call('SREM', user_key(o.user_id, 'unpaid'), o.order_id)
    redis.call('ZREM', O.due, 'pay:' .. o.order_id)
    if spec.release and O.back_to_group and O.back_to_group(o) then
      -- an unpaid member's units go back to its group's shelf (still held)
    elseif spec.release then
      redis.call('HINCRBY', O.held, sku, -qty)
      stock_moved = true
      redis.call('HINCRBY', O.stock, sku, qty)
    elseif SOLD[spec.target] then
      redis.call('HINCRBY', O.held, sku, -qty)
      stock_moved = true
      redis.call('HINCRBY', O.sold, sku, qty)
      sold_delta = qty
    else
      redis.call('HINCRBY', O.held, sku, -qty)
      stock_moved = true
    end
  elseif from == 'pending_group' then
    -- a group member's units were held from the group's shelf
    redis.call('HINCRBY', O.held, sku, -qty)
    stock_moved = true
    if spec.release then
      redis.call('HINCRBY', O.stock, sku, qty)
    elseif SOLD[spec.target] then
      redis.call('HINCRBY', O.sold, sku, qty)
      sold_delta = qty
    end
  elseif spec.release and SOLD[from] then
    redis.call('HINCRBY', O.sold, sku, -qty)
    redis.call('HINCRBY', O.stock, sku, qty)
    sold_delta, stock_moved = -qty, true
  elseif from == 'expired' and SOLD[spec.target] then
    -- a late payment re-reserves from the shelf (the caller checked left >= qty)
    redis.call('HINCRBY', O.stock, sku, -qty)
    redis.call('HINCRBY', O.sold, sku, qty)
    sold_delta, stock_moved = qty, true
  end
  if sold_delta > 0 and set(o.group_id) then
    count_group_sale(o, ts)
  end
  if spec.refund and set(o.paid_at) then
    create_refund(o, spec.target, ts)
  end
  if from == 'ready' then
    redis.call('ZREM', O.due, 'pickup:' .. o.order_id)
  end
  o.state = spec.target
  o.version = jint(tonumber(o.version) + 1)
  o.updated_at = jint(ts)
  o.reason = reason
  local json = record(o, from, by, actor, reason, ts, sold_delta, 'move')
  if TERMINAL[o.state] then
    drop_code(o)
    retire(o)
  end
  if stock_moved then
    MOVED[sku] = true
  end
  return json
end

-- A change that is not a move (a refund's or a courier's status): version +1, event
-- from = to, the message.
local function touch(o, by, actor, reason, ts)
  o.version = jint(tonumber(o.version) + 1)
  o.updated_at = jint(ts)
  return record(o, o.state, by, actor, reason, ts, 0, 'move')
end
