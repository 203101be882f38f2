// Room state as both pages see it, and how each protocol message changes it.
// Pure data, no DOM and no socket: welcome.state in, messages in, a plain object out.
// Pages render from this object; `apply` says which parts changed so they redraw only those.

/** How long an ended or sold-out offer stays on screen so viewers see what happened. */
export const OFFER_LINGER_MS = 8_000;

export function emptyState() {
  return {
    room: null,
    role: "viewer",
    user: null,
    live: false,
    session_id: null,
    title: null,
    name: null,
    stream_url: null,
    viewers: 0,
    peak: 0,
    products: new Map(), // sku → {sku, name, price, stock, image?}; insertion order = display order
    offers: new Map(), // offer_id → offer object (+ closedAt, local ms, once not live)
    groups: new Map(), // group_id → group object (+ closedAt, local ms, once failed/cancelled)
    pinned: null,
    kind: "store", // "network": a joint room (跨店联播) whose buys go to its member `stores`
    stores: [],
    clockOffset: 0, // server clock minus ours, ms; estimated from message `ts`
    offsetSamples: [],
  };
}

/** Replace everything from a `welcome` (resumed: false), keeping the clock estimate. */
export function fromWelcome(prev, msg) {
  const s = emptyState();
  const st = msg.state ?? {};
  s.room = msg.room ?? prev.room;
  s.role = msg.role ?? "viewer";
  s.user = msg.user ?? null;
  s.live = Boolean(st.live);
  s.session_id = st.session_id ?? null;
  s.title = st.title ?? null;
  s.name = st.name ?? null;
  s.stream_url = st.stream_url ?? null;
  s.viewers = st.viewers ?? 0;
  s.peak = st.peak ?? s.viewers;
  for (const p of st.products ?? []) s.products.set(p.sku, { ...p });
  for (const o of st.offers ?? []) s.offers.set(o.offer_id, { ...o });
  for (const g of st.groups ?? []) {
    // The previous copy only lends its closedAt, so a closed card does not linger anew.
    if (g?.group_id) s.groups.set(g.group_id, mergeGroup(prev.groups?.get(g.group_id), g));
  }
  s.pinned = st.pinned ?? null;
  s.kind = st.kind === "network" ? "network" : "store";
  s.stores = Array.isArray(st.stores) ? [...st.stores] : [];
  s.clockOffset = prev.clockOffset;
  s.offsetSamples = prev.offsetSamples;
  return s;
}

/** On a resumed welcome only identity may change; the room state stays and replays follow. */
export function keepOnResume(state, msg) {
  state.role = msg.role ?? state.role;
  state.user = msg.user ?? state.user;
  return state;
}

/**
 * Apply one room message in place. Returns the set of parts that changed:
 * "live", "viewers", "products", "offers", "pinned", "groups" (empty for other types).
 */
export function apply(state, msg) {
  const changed = new Set();
  if (typeof msg.ts === "number") noteServerTime(state, msg.ts);
  switch (msg.type) {
    case "viewers":
      state.viewers = msg.count;
      if (typeof msg.peak === "number") state.peak = msg.peak;
      changed.add("viewers");
      break;
    case "stock": {
      const p = state.products.get(msg.sku);
      if (p) {
        p.stock = msg.left; // coalesced by the server: the latest value is the truth
        changed.add("products");
        changed.add("offers"); // offer "units left" is capped by the shelf stock
      }
      break;
    }
    case "offer": {
      const prev = state.offers.get(msg.offer_id);
      const offer = { ...prev, ...msg };
      delete offer.type;
      delete offer.seq;
      delete offer.ts;
      if (offer.status !== "live") offer.closedAt = prev?.closedAt ?? Date.now();
      state.offers.set(msg.offer_id, offer);
      changed.add("offers");
      break;
    }
    case "group":
      if (typeof msg.group_id !== "string") break;
      state.groups.set(msg.group_id, mergeGroup(state.groups.get(msg.group_id), msg));
      changed.add("groups");
      break;
    case "pinned":
      state.pinned = msg.sku ?? null;
      changed.add("pinned");
      changed.add("products");
      break;
    case "live":
      state.live = Boolean(msg.live);
      if (msg.session_id !== undefined) state.session_id = msg.session_id;
      if (msg.title !== undefined) state.title = msg.title;
      if (!state.live) state.pinned = null;
      changed.add("live");
      changed.add("products");
      break;
    default:
      break;
  }
  return changed;
}

/** A `group` message (coalesced: always the whole latest object) over what we had. */
function mergeGroup(prev, msg) {
  const group = { ...prev, ...msg };
  delete group.type;
  delete group.seq;
  delete group.ts;
  if (group.status === "failed" || group.status === "cancelled") {
    group.closedAt = prev?.closedAt ?? Date.now();
  }
  return group;
}

/**
 * Keep a running estimate of (server clock − our clock) for offer countdowns: phones' clocks
 * drift. A message stamped `ts` arrives after it was sent, so ts − now underestimates the
 * offset by the network delay; the largest of recent samples is the best guess.
 */
function noteServerTime(state, ts) {
  const samples = state.offsetSamples;
  samples.push(ts - Date.now());
  if (samples.length > 20) samples.shift();
  state.clockOffset = Math.max(...samples);
}

/** Server "now" in epoch ms, for countdowns against `ends_at`. */
export function serverNow(state) {
  return Date.now() + state.clockOffset;
}

/** Units a viewer can still get from an offer: its own count, but never above the shelf. */
export function offerLeft(state, offer) {
  const stock = state.products.get(offer.sku)?.stock;
  return typeof stock === "number" ? Math.min(offer.left, stock) : offer.left;
}

/** "live" | "sold_out" | "ended", also ending offers whose clock ran out before the server said so. */
export function offerStatus(state, offer) {
  if (offer.status !== "live") return offer.status;
  if (typeof offer.ends_at === "number" && serverNow(state) >= offer.ends_at) return "ended";
  if (offerLeft(state, offer) <= 0) return "sold_out";
  return "live";
}

/** Offers worth showing now: running ones, and closed ones for a few seconds. */
export function visibleOffers(state) {
  const now = Date.now();
  return [...state.offers.values()].filter((o) => {
    if (offerStatus(state, o) === "live") return true;
    const closedAt = o.closedAt ?? (typeof o.ends_at === "number" ? o.ends_at - state.clockOffset : 0);
    return now - closedAt < OFFER_LINGER_MS;
  });
}
