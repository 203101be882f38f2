// Page text of the dashboard (/dashboard/{room}, /dashboard) in zh-CN and en: figures,
// best sellers, customers and their tags, suggestions, the per-store table. The rules' and
// reasons' own sentences come from the server in both languages. `t` looks here first and
// falls back to i18n.js (shared strings); the language is i18n.js's.

import { getLang, t as sharedT } from "./i18n.js";

export const INSIGHTS_STRINGS = {
  "zh-CN": {
    "dash.title.room": "门店经营看板",
    "dash.title.chain": "总部经营看板",
    "dash.sub.room": "{name} · 已结束的 {n} 场直播",
    "dash.sub.chain": "{stores} 家门店 · 已结束的 {n} 场直播",
    "dash.loading": "加载中…",
    "dash.range": "时间范围",
    "dash.range.all": "全部",
    "dash.range.30": "近 30 天",
    "dash.range.7": "近 7 天",
    "dash.figures": "经营概况",
    "fig.sessions": "场次",
    "fig.viewers": "观看人次",
    "fig.buyers": "下单人数",
    "fig.conversion": "转化率",
    "fig.orders": "订单数",
    "fig.units": "件数",
    "fig.gmv": "成交额",
    "fig.aov": "客单价",
    "fig.new": "新客",
    "fig.returning": "老客",
    "fig.repurchase": "复购率",
    "fig.repeat": "复购人数",
    "dash.defs":
      "只算已结束场次里的有效订单（已取消、待付款、未成团不算）。观看人次 = 每场不重复观众相加；转化率 = 每场下单人数相加 ÷ 观看人次；老客 = 时间范围开始前在{scope}下过单；复购率 = 在 2 场及以上下单的人 ÷ 下单人数。",
    "dash.scope.room": "本店",
    "dash.scope.chain": "任一门店",
    "dash.best": "热销商品",
    "dash.best.empty": "这段时间还没有成交",
    "dash.units": "{n} 件",
    "col.rank": "排名",
    "col.product": "商品",
    "col.units": "件数",
    "col.gmv": "成交额",
    "col.buyers": "下单人数",
    "col.store": "门店",
    "col.sessions": "场次",
    "col.viewers": "观看人次",
    "col.conversion": "转化率",
    "col.orders": "订单",
    "col.repurchase": "复购率",
    "col.customer": "顾客",
    "col.tags": "标签",
    "col.session": "场次",
    "col.started": "开播时间",
    "dash.stores": "各门店对比",
    "dash.stores.empty": "还没有门店",
    "dash.customers": "顾客",
    "dash.customers.count": "共 {n} 位",
    "dash.customers.empty": "这段时间还没有顾客",
    "dash.customer.line": "{orders} 单 · {units} 件 · {sessions} 场",
    "dash.customer.returning": "老客",
    "dash.customer.new": "新客",
    "dash.tags.hint": "点标签看规则",
    "dash.prev": "上一页",
    "dash.next": "下一页",
    "dash.page": "第 {from}–{to} 位",
    "dash.suggest": "下场选品建议",
    "dash.suggest.empty": "数据还不够，暂时没有建议",
    "dash.suggest.audience": "预计观众 {n} 人（近几场的中位数）",
    "dash.suggest.no_audience": "本店还没有场次，预测按其他门店的每场件数",
    "dash.forecast": "预计 {expected} 件",
    "dash.forecast.range": "{low}–{high} 件",
    "dash.forecast.why": "怎么算的",
    "dash.listed": "已上架",
    "dash.not_listed": "未上架",
    "dash.sessions": "场次明细",
    "dash.sessions.empty": "还没有已结束的场次",
    "dash.open_store": "看这家店",
    "dash.token_required":
      "需要门店主播、店员或总部的令牌。请用带 #token=… 的链接打开本页。",
    "dash.token_required.chain": "需要总部（hq）令牌。请用带 #token=… 的链接打开本页。",
    "dash.forbidden": "这个令牌不能查看本页。",
    "dash.failed": "数据没有加载成功：{message}",
  },
  en: {
    "dash.title.room": "Store dashboard",
    "dash.title.chain": "Chain dashboard",
    "dash.sub.room": "{name} · {n} ended sessions",
    "dash.sub.chain": "{stores} stores · {n} ended sessions",
    "dash.loading": "Loading…",
    "dash.range": "Time range",
    "dash.range.all": "All",
    "dash.range.30": "30 days",
    "dash.range.7": "7 days",
    "dash.figures": "Overview",
    "fig.sessions": "Sessions",
    "fig.viewers": "Viewers",
    "fig.buyers": "Buyers",
    "fig.conversion": "Conversion",
    "fig.orders": "Orders",
    "fig.units": "Units",
    "fig.gmv": "GMV",
    "fig.aov": "Per buyer",
    "fig.new": "New",
    "fig.returning": "Returning",
    "fig.repurchase": "Repurchase",
    "fig.repeat": "Repeat buyers",
    "dash.defs":
      "Only orders that count as sold, in ended sessions (cancelled, unpaid and pending-group orders do not). Viewers = each session's distinct viewers, added up; conversion = each session's buyers added up ÷ viewers; returning = bought in {scope} before the range began; repurchase = buyers in 2 sessions or more ÷ buyers.",
    "dash.scope.room": "this store",
    "dash.scope.chain": "any store",
    "dash.best": "Best sellers",
    "dash.best.empty": "Nothing sold in this range yet",
    "dash.units": "{n} units",
    "col.rank": "#",
    "col.product": "Product",
    "col.units": "Units",
    "col.gmv": "GMV",
    "col.buyers": "Buyers",
    "col.store": "Store",
    "col.sessions": "Sessions",
    "col.viewers": "Viewers",
    "col.conversion": "Conversion",
    "col.orders": "Orders",
    "col.repurchase": "Repurchase",
    "col.customer": "Customer",
    "col.tags": "Tags",
    "col.session": "Session",
    "col.started": "Started",
    "dash.stores": "Stores side by side",
    "dash.stores.empty": "No stores yet",
    "dash.customers": "Customers",
    "dash.customers.count": "{n} in all",
    "dash.customers.empty": "No customers in this range yet",
    "dash.customer.line": "{orders} orders · {units} units · {sessions} sessions",
    "dash.customer.returning": "Returning",
    "dash.customer.new": "New",
    "dash.tags.hint": "Tap a tag for its rule",
    "dash.prev": "Previous",
    "dash.next": "Next",
    "dash.page": "{from}–{to}",
    "dash.suggest": "For the next live",
    "dash.suggest.empty": "Not enough data for suggestions yet",
    "dash.suggest.audience": "Expected viewers: {n} (median of the last sessions)",
    "dash.suggest.no_audience":
      "No session here yet: forecasts go by other stores' units per session",
    "dash.forecast": "Expect {expected}",
    "dash.forecast.range": "{low}–{high} units",
    "dash.forecast.why": "How",
    "dash.listed": "On the shelf",
    "dash.not_listed": "Not listed",
    "dash.sessions": "Sessions",
    "dash.sessions.empty": "No ended session yet",
    "dash.open_store": "Open",
    "dash.token_required":
      "A token of the store's broadcaster, staff or HQ is required. Open this page with its #token=… link.",
    "dash.token_required.chain": "An HQ token is required. Open this page with its #token=… link.",
    "dash.forbidden": "This token may not see this page.",
    "dash.failed": "Could not load the figures: {message}",
  },
};

/** Translate `key` (this page's strings first, then the shared ones). */
export function t(key, vars = {}) {
  const table = INSIGHTS_STRINGS[getLang()] ?? INSIGHTS_STRINGS["zh-CN"];
  const text = table[key] ?? INSIGHTS_STRINGS["zh-CN"][key];
  if (text === undefined) return sharedT(key, vars);
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Fill the page's static text: elements carry data-t (text) or data-t-label (aria-label). */
export function applyInsights(root = document) {
  for (const node of root.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of root.querySelectorAll("[data-t-label]")) {
    node.setAttribute("aria-label", t(node.dataset.tLabel));
  }
}

/** The server's text in the page's language: `zh` or its `_en` twin. */
export function pick(zh, en) {
  return getLang() === "en" ? en || zh : zh;
}
