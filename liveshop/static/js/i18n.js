// Page text in Simplified Chinese (the default: our neighbours read Chinese first) and English.
// Owns every user-visible string of the pages (viewer, console, admin); the protocol's `lang`
// value is the key here, so the language the page shows is the language the server speaks.

const STRINGS = {
  "zh-CN": {
    "lang.switch": "EN",
    "lang.switch_label": "切换到英文",
    "conn.connecting": "连接中…",
    "conn.reconnecting": "重新连接中…",
    "conn.closed": "连接已断开：{reason}",
    "live.on": "直播中",
    "live.off": "未开播",
    "viewers": "{n} 人在看",
    "store.default": "社区直播间",
    "page.viewer": "直播间",
    "page.console": "主播控制台",

    "video.none": "主播还没有开始推流，商品照常可以下单",
    "video.unsupported": "此浏览器无法播放直播视频，请用手机浏览器打开",
    "products.title": "全部商品",
    "pinned.label": "正在讲解",
    "price.was": "原价 {amount}",
    "stock": "库存 {n}",
    "stock.none": "已售罄",
    "buy": "购买",
    "buy.pending": "提交中…",
    "buy.soldout": "已售罄",
    "buy.notlive": "开播后可买",
    "buy.signin": "登录后购买",
    "like": "点赞",
    "liked": "已点赞 {n}",
    "anon.note": "你正在以游客身份观看。登录后才能下单、聊天和点赞。",

    "offer.label": "限时秒杀",
    "offer.left": "剩 {n} 件",
    "offer.limit": "每人限 {n} 件",
    "offer.ends_in": "距结束",
    "offer.buy": "立即抢",
    "offer.soldout": "已抢光",
    "offer.ended": "已结束",

    "order.ok": "下单成功",
    "order.pickup": "取货码",
    "order.show": "到店出示此码取货",
    "order.item": "{name} × {qty}",
    "order.total": "合计 {amount}",
    "order.hide": "收起",
    "orders.mine": "我的订单",

    "reject.sold_out": "卖完了，没抢到",
    "reject.limit_exceeded": "已达到每人限购数量",
    "reject.offer_ended": "这场秒杀已经结束了",
    "reject.unknown_sku": "这个商品已经下架了",
    "reject.not_live": "直播还没开始，暂时不能下单",
    "reject.rate_limited": "点得太快了，请稍等几秒再试",
    "reject.other": "下单没有成功（{reason}）",

    "err.not_ready": "还在连接，请稍候再试",
    "err.too_large": "内容太长，发送失败",
    "err.bad_message": "请求没有被接受",
    "err.unauthorized": "请先登录",
    "err.forbidden": "没有权限进行这个操作",
    "err.unknown_room": "没有找到这个直播间",
    "err.hello_timeout": "连接超时",
    "err.protocol_violation": "连接被服务器断开",
    "err.rate_limited": "操作太频繁，请稍后再试",
    "err.unknown_sku": "没有这个商品",
    "err.not_live": "还没有开播",
    "err.token_expired": "登录已过期，请重新打开链接",
    "err.unavailable": "服务暂时不可用，请稍后再试",
    "err.slow_consumer": "网络太慢，正在重新连接",
    "err.flooding": "发送太频繁，连接被暂停了一下",
    "err.server_shutdown": "服务器正在重启",
    "err.offline": "网络断开了",
    "err.other": "出错了：{message}",

    "chat.title": "聊天",
    "chat.placeholder": "说点什么…",
    "chat.send": "发送",
    "chat.signin": "登录后可以聊天",
    "chat.empty": "还没有人说话，来打个招呼吧",
    "chat.me": "我",

    "golive.title_label": "直播标题",
    "golive.placeholder": "例如：今晚荔枝特价",
    "golive.button": "开播",
    "endlive.button": "下播",
    "endlive.confirm": "再点确认下播",
    "live.session": "场次 {id}",
    "stats.viewers": "在线",
    "stats.peak": "峰值",
    "stats.orders": "订单",
    "stats.units": "件数",
    "stats.gmv": "成交额",
    "stats.conversion": "转化率",
    "stats.unstored": "未入库",
    "chart.title": "观看人数与订单",
    "chart.viewers": "观看人数",
    "chart.orders": "订单数",
    "chart.empty": "开播后这里显示趋势",
    "top.title": "热销商品",
    "top.empty": "还没有成交",
    "top.row": "{units} 件 · {gmv}",
    "hints.title": "主播提示",
    "hints.empty": "这里会提示你下一步该做什么",
    "hint.act_now": "现在就做",
    "hint.dismiss": "知道了",
    "offerform.title": "发起秒杀",
    "offerform.sku": "商品",
    "offerform.price": "秒杀价（元）",
    "offerform.qty": "数量",
    "offerform.duration": "时长（秒）",
    "offerform.limit": "每人限购",
    "offerform.start": "开始秒杀",
    "offerform.bad_price": "请输入正确的价格，例如 9.90",
    "offerform.bad_int": "请输入正整数",
    "offers.title": "进行中的秒杀",
    "offers.none": "没有进行中的秒杀",
    "offers.stop": "停止",
    "offers.row": "{price} · 剩 {left}/{qty} · 限 {limit}",
    "stock.title": "商品与库存",
    "pin": "置顶",
    "pinned": "讲解中",
    "restock.title": "补货 / 修正库存",
    "restock.sku": "商品",
    "restock.qty": "数量（负数为扣减）",
    "restock.button": "更新库存",
    "restock.bad_qty": "请输入非零整数",
    "sent": "已发送",
    "token.required": "需要主播令牌。请用带 #token=… 的链接打开控制台。",
    "role.wrong": "这个令牌不能管理本直播间（当前身份：{role}）。",

    "page.admin": "运营后台",
    "admin.readonly": "只读",
    "admin.writable": "可操作",
    "admin.updated": "{n} 个进程 · {m} 个直播间 · 每 2 秒刷新",
    "admin.processes": "服务进程",
    "admin.rooms": "直播间",
    "admin.none_processes": "没有在线的进程",
    "admin.none_rooms": "还没有直播间",
    "col.process": "进程",
    "col.host": "主机",
    "col.pid": "PID",
    "col.version": "版本",
    "col.uptime": "运行时长",
    "col.connections": "连接",
    "col.rooms": "直播间",
    "col.lag": "循环延迟",
    "col.heartbeat": "心跳",
    "col.room": "直播间",
    "col.live": "状态",
    "col.viewers": "在线",
    "col.seq": "seq",
    "col.history": "历史条数",
    "col.outbox": "待入库",
    "col.reconcile": "对账差",
    "col.offers": "秒杀",
    "ago": "{s} 秒前",
    "this_process": "本进程",
    "admin.messages": "最近 {n} 条消息（最新在下）",
    "admin.messages_btn": "消息",
    "admin.no_messages": "还没有消息",
    "admin.connections": "连接（{n}）",
    "admin.no_connections": "没有连接",
    "admin.close_detail": "关闭",
    "kind.viewer": "观众",
    "kind.console": "主播台",
    "admin.end_offer": "结束",
    "admin.disconnect": "断开",
    "admin.confirm_end": "结束直播间 {room} 的秒杀 {offer}（{sku}）？观众会立刻看到“已结束”。",
    "admin.confirm_disconnect": "断开连接 {conn}？客户端会自动重连。",
    "admin.cancel": "取消",
    "admin.confirm": "确认",
    "admin.done_end": "秒杀已结束",
    "admin.done_disconnect": "连接已断开",
    "admin.requested": "已发出请求，等待该进程处理",
    "admin.no_offers": "—",
    "admin.token_required": "需要总部（hq）令牌。请用带 #token=… 的链接打开本页。",
    "admin.not_hq": "这个令牌不是总部（hq）令牌，不能打开运营后台。",
    "admin.offline": "刷新失败，正在重试…",
  },
  en: {
    "lang.switch": "中文",
    "lang.switch_label": "Switch to Chinese",
    "conn.connecting": "Connecting…",
    "conn.reconnecting": "Reconnecting…",
    "conn.closed": "Disconnected: {reason}",
    "live.on": "LIVE",
    "live.off": "Offline",
    "viewers": "{n} watching",
    "store.default": "Community live room",
    "page.viewer": "Live room",
    "page.console": "Broadcaster console",

    "video.none": "The video hasn't started yet. You can still order.",
    "video.unsupported": "This browser can't play the live video; try your phone's browser",
    "products.title": "All products",
    "pinned.label": "Now showing",
    "price.was": "was {amount}",
    "stock": "{n} left",
    "stock.none": "Sold out",
    "buy": "Buy",
    "buy.pending": "Placing…",
    "buy.soldout": "Sold out",
    "buy.notlive": "Opens when live",
    "buy.signin": "Sign in to buy",
    "like": "Like",
    "liked": "Liked {n}",
    "anon.note": "You are watching as a guest. Sign in to buy, chat and like.",

    "offer.label": "Flash deal",
    "offer.left": "{n} left",
    "offer.limit": "Max {n} per person",
    "offer.ends_in": "Ends in",
    "offer.buy": "Grab it",
    "offer.soldout": "Sold out",
    "offer.ended": "Ended",

    "order.ok": "Order placed",
    "order.pickup": "Pickup code",
    "order.show": "Show this code at the store to collect",
    "order.item": "{name} × {qty}",
    "order.total": "Total {amount}",
    "order.hide": "Hide",
    "orders.mine": "My orders",

    "reject.sold_out": "Sold out, you missed this one",
    "reject.limit_exceeded": "You've reached the per-person limit",
    "reject.offer_ended": "This flash deal has ended",
    "reject.unknown_sku": "This product is no longer available",
    "reject.not_live": "The stream isn't live; ordering is closed",
    "reject.rate_limited": "Too many taps; wait a few seconds and try again",
    "reject.other": "The order didn't go through ({reason})",

    "err.not_ready": "Still connecting; try again in a moment",
    "err.too_large": "That was too long to send",
    "err.bad_message": "The request was refused",
    "err.unauthorized": "Please sign in first",
    "err.forbidden": "You're not allowed to do that",
    "err.unknown_room": "This live room doesn't exist",
    "err.hello_timeout": "The connection timed out",
    "err.protocol_violation": "The server closed the connection",
    "err.rate_limited": "Too fast; please try again shortly",
    "err.unknown_sku": "No such product",
    "err.not_live": "Not live yet",
    "err.token_expired": "Your sign-in has expired; open the link again",
    "err.unavailable": "The service is briefly unavailable; try again shortly",
    "err.slow_consumer": "Your connection is too slow; reconnecting",
    "err.flooding": "Too many messages; the connection was paused",
    "err.server_shutdown": "The server is restarting",
    "err.offline": "You're offline",
    "err.other": "Something went wrong: {message}",

    "chat.title": "Chat",
    "chat.placeholder": "Say something…",
    "chat.send": "Send",
    "chat.signin": "Sign in to chat",
    "chat.empty": "No messages yet; say hello",
    "chat.me": "me",

    "golive.title_label": "Stream title",
    "golive.placeholder": "e.g. Lychee special tonight",
    "golive.button": "Go live",
    "endlive.button": "End stream",
    "endlive.confirm": "Tap again to end",
    "live.session": "Session {id}",
    "stats.viewers": "Viewers",
    "stats.peak": "Peak",
    "stats.orders": "Orders",
    "stats.units": "Units",
    "stats.gmv": "GMV",
    "stats.conversion": "Conversion",
    "stats.unstored": "Not stored",
    "chart.title": "Viewers and orders",
    "chart.viewers": "Viewers",
    "chart.orders": "Orders",
    "chart.empty": "The trend appears once you are live",
    "top.title": "Top products",
    "top.empty": "No sales yet",
    "top.row": "{units} sold · {gmv}",
    "hints.title": "Coaching tips",
    "hints.empty": "Tips on what to do next appear here",
    "hint.act_now": "Act now",
    "hint.dismiss": "Got it",
    "offerform.title": "Start a flash deal",
    "offerform.sku": "Product",
    "offerform.price": "Deal price (¥)",
    "offerform.qty": "Quantity",
    "offerform.duration": "Duration (s)",
    "offerform.limit": "Per-person limit",
    "offerform.start": "Start deal",
    "offerform.bad_price": "Enter a valid price, e.g. 9.90",
    "offerform.bad_int": "Enter a whole number above zero",
    "offers.title": "Running deals",
    "offers.none": "No deal running",
    "offers.stop": "Stop",
    "offers.row": "{price} · {left}/{qty} left · max {limit}",
    "stock.title": "Products and stock",
    "pin": "Pin",
    "pinned": "Pinned",
    "restock.title": "Restock / correct stock",
    "restock.sku": "Product",
    "restock.qty": "Qty (− to reduce)",
    "restock.button": "Update stock",
    "restock.bad_qty": "Enter a whole number other than zero",
    "sent": "Sent",
    "token.required": "A broadcaster token is required. Open the console with its #token=… link.",
    "role.wrong": "This token can't run this room (signed in as: {role}).",

    "page.admin": "Operations admin",
    "admin.readonly": "Read-only",
    "admin.writable": "Actions on",
    "admin.updated": "Processes: {n} · rooms: {m} · every 2 s",
    "admin.processes": "Server processes",
    "admin.rooms": "Rooms",
    "admin.none_processes": "No live process",
    "admin.none_rooms": "No rooms yet",
    "col.process": "Process",
    "col.host": "Host",
    "col.pid": "PID",
    "col.version": "Version",
    "col.uptime": "Uptime",
    "col.connections": "Conns",
    "col.rooms": "Rooms",
    "col.lag": "Loop lag",
    "col.heartbeat": "Heartbeat",
    "col.room": "Room",
    "col.live": "Status",
    "col.viewers": "Viewers",
    "col.seq": "seq",
    "col.history": "History",
    "col.outbox": "Outbox",
    "col.reconcile": "Recon. Δ",
    "col.offers": "Offers",
    "ago": "{s} s ago",
    "this_process": "this one",
    "admin.messages": "Last {n} messages (newest last)",
    "admin.messages_btn": "Messages",
    "admin.no_messages": "No messages yet",
    "admin.connections": "Connections ({n})",
    "admin.no_connections": "No connections",
    "admin.close_detail": "Close",
    "kind.viewer": "viewer",
    "kind.console": "console",
    "admin.end_offer": "End",
    "admin.disconnect": "Disconnect",
    "admin.confirm_end": "End offer {offer} ({sku}) in room {room}? Viewers see it ended at once.",
    "admin.confirm_disconnect": "Disconnect {conn}? The client will reconnect by itself.",
    "admin.cancel": "Cancel",
    "admin.confirm": "Confirm",
    "admin.done_end": "Offer ended",
    "admin.done_disconnect": "Connection closed",
    "admin.requested": "Requested; waiting for that process",
    "admin.no_offers": "—",
    "admin.token_required": "An hq token is required. Open this page with its #token=… link.",
    "admin.not_hq": "This is not an hq token; the admin page is for HQ.",
    "admin.offline": "Refresh failed; retrying…",
  },
};

export const LANGS = Object.keys(STRINGS);
const STORE_KEY = "liveshop:lang";
const listeners = new Set();
let current = initialLang();

function initialLang() {
  // An explicit ?lang= wins (shareable links), then the reader's last choice, then Chinese.
  const fromUrl = new URLSearchParams(location.search).get("lang");
  if (fromUrl && fromUrl in STRINGS) return fromUrl;
  try {
    const saved = localStorage.getItem(STORE_KEY);
    if (saved && saved in STRINGS) return saved;
  } catch {
    // Private modes of some in-app browsers throw on storage; the default is fine then.
  }
  return "zh-CN";
}

export function getLang() {
  return current;
}

export function setLang(lang) {
  if (!(lang in STRINGS) || lang === current) return;
  current = lang;
  try {
    localStorage.setItem(STORE_KEY, lang);
  } catch {
    // see initialLang
  }
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

/** Translate `key`, filling `{name}` placeholders from `vars`; unknown keys show as-is. */
export function t(key, vars = {}) {
  const table = STRINGS[current];
  const text = table[key] ?? STRINGS["zh-CN"][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** True if `key` has a translation: lets callers fall back for codes we do not know yet. */
export function has(key) {
  return key in STRINGS[current];
}

/**
 * Fill static page chrome: elements carry data-i18n (text), data-i18n-placeholder,
 * data-i18n-label (aria-label) so the HTML stays the single place that says where text goes.
 */
export function applyI18n(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}
