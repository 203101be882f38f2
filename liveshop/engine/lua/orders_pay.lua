-- orders_pay.lua: a payment notification (already signature-checked) applied once per
-- txn_id.
--
-- KEYS[1..10], ARGV[1..3]: the order keys of _orders.lua.
-- ARGV[4] order_id  ARGV[5] txn_id  ARGV[6] amount  ARGV[7] paid_at
-- ARGV[8] spec awaiting_payment -> paid  ARGV[9] spec of the pay_by move (-> expired)
-- ARGV[10] spec of the late payment (expired -> paid)  ARGV[11] txn record ttl (s)
-- ARGV[12] spec pending_group -> accepted  ARGV[13] spec of a failed group's members
-- A group member's payment counts toward its group (which may succeed with it); paid
-- after its group failed (or after its deadline, when the group fails first), it is
-- refunded at once; paid late, refunded (never re-reserved: the group's units are the
-- group's). A cross-store deal's member is counted by the relay (chain_count.lua).
--
-- Reply: {'repeat', answer} | {'new', answer} | {'not_found'} | {'amount_mismatch', total}
-- answer: '{"status": "paid"|"refunded", "order": {...}}', recorded under the txn only
-- when the signature and amount were right (refusals record nothing).
-- Paid in time: awaiting_payment -> paid. Paid after pay_by: the order expires first
-- (the clock's move, if no sweeper made it yet), then it is re-reserved as `paid` if
-- left >= qty, else refunded once (reason 'late_payment'). A payment for an order that
-- is neither (cancelled, or paid already by another txn) is refunded once per txn.

local txn_key = O.prefix .. 'txn:' .. ARGV[5]
local earlier = redis.call('GET', txn_key)
if earlier then
  return {'repeat', earlier}
end
local ts = now_ms()
local id = ARGV[4]
local o = load_order(id)
if o == nil then
  return {'not_found'}
end
local total = tonumber(o.qty) * tonumber(o.unit_price)
if tonumber(ARGV[6]) ~= total then
  return {'amount_mismatch', jint(total)}
end
local pay, expire, late = parse_spec(ARGV[8]), parse_spec(ARGV[9]), parse_spec(ARGV[10])
local status, json = 'paid', nil
if o.state == 'awaiting_payment' and ts >= tonumber(o.pay_by) then
  change(o, expire, 'clock', 'clock', 'pay_by', ts)
end
local group_ok, group_fail = parse_spec(ARGV[12]), parse_spec(ARGV[13])
if o.state == 'awaiting_payment' and set(o.group_id) and o.pool ~= 'chain' then
  -- A group past its deadline ends first (its settle leaves this unpaid order alone).
  close_group_if_due(o.group_id, group_ok, group_fail, ts)
end
if pay.sources[o.state] then
  o.paid_at, o.txn_id = ARGV[7], ARGV[5]
  json = change(o, pay, 'payment', ARGV[5], '', ts)
  if o.pool == 'chain' then
    chain_event('paid', o)  -- counted (or refunded) on the deal's slot by the relay
  elseif set(o.group_id) then
    local g = redis.call('HMGET', group_key(o.group_id), 'status', 'closed_at')
    if g[1] == 'failed' or g[1] == 'cancelled' then
      status = 'refunded'
      json = change(o, group_fail, 'group', 'group', 'group_failed', ts)
    else
      local _value, succeeded_now = count_member(o.group_id, o.user_id, tonumber(o.qty),
        group_ok, group_fail, ts)
      if succeeded_now then
        emit_group(o.group_id, ts)
      else
        emit_progress(o.group_id, ts)
      end
    end
  end
elseif late.sources[o.state] and not set(o.txn_id) and not set(o.group_id) then
  o.paid_at, o.txn_id = ARGV[7], ARGV[5]
  if tonumber(redis.call('HGET', O.stock, o.sku) or '0') >= tonumber(o.qty) then
    json = change(o, late, 'payment', ARGV[5], 'late_payment', ts)
  else
    status = 'refunded'
    create_refund(o, 'late_payment', ts)
    json = touch(o, 'payment', ARGV[5], 'late_payment', ts)
  end
elseif late.sources[o.state] and not set(o.txn_id) then
  o.paid_at, o.txn_id = ARGV[7], ARGV[5]  -- a group member paid late: refunded
  status = 'refunded'
  create_refund(o, 'late_payment', ts)
  json = touch(o, 'payment', ARGV[5], 'late_payment', ts)
else
  -- Paid for an order that cannot take it: give this transaction's money back.
  status = 'refunded'
  local saved_txn = o.txn_id
  o.txn_id = ARGV[5]
  create_refund(o, 'unneeded_payment:' .. ARGV[5], ts)
  o.txn_id = saved_txn
  json = touch(o, 'payment', ARGV[5], 'unneeded_payment', ts)
end
flush_stock(ts)
local answer = '{"status":' .. jstr(status) .. ',"order":' .. json .. '}'
redis.call('SET', txn_key, answer, 'EX', tonumber(ARGV[11]))
return {'new', answer}
