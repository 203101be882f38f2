// The operators' admin page (/admin): every live server process, every room's figures, a
// room's last messages and connections, and (when the server allows writes) two actions.
// Owns the admin DOM; reads /api/admin/* with an hq token every 2 s. No socket.

import { TokenSource } from "./auth.js";
import { count } from "./format.js";
import { onLangChange, t } from "./i18n.js";
import { $, bindLangToggle, connectionBanner, el, errorText, setText, toast } from "./ui.js";

const REFRESH_MS = 2_000;
const MESSAGES = 200;

const tokens = new TokenSource({ role: "hq", room: "*" });
const banner = connectionBanner();
let token = null;
let write = false;
let selected = null; // room id whose messages and connections are shown
let last = { processes: null, rooms: null, messages: null, connections: null };
let timer = null;
let stopped = false;

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const res = await fetch(path, {
    method,
    cache: "no-store",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(res.status, data?.error?.code ?? "unavailable", data?.error?.message ?? "");
  }
  return data;
}

function fatal(text) {
  stopped = true;
  clearTimeout(timer);
  const box = $("#fatal");
  box.textContent = text;
  box.hidden = false;
  document.body.dataset.fatal = "true";
}

// ---- formatting ----------------------------------------------------------------------

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  return `${m}m ${String(s % 60).padStart(2, "0")}s`;
}

function seconds(ms) {
  return (Math.max(0, ms) / 1000).toFixed(1);
}

function clock(ts) {
  const d = new Date(ts);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** A message's fields other than type/seq/ts, as `key=value` (objects as compact JSON). */
function summary(msg) {
  return Object.entries(msg)
    .filter(([k]) => !["type", "seq", "ts"].includes(k))
    .map(([k, v]) => `${k}=${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`)
    .join(" ");
}

/** "vm:1234:ab12cd" → "ab12cd": the random tail is what tells processes apart at a glance. */
function shortProcess(id) {
  return id.split(":").pop();
}

function cell(label, content, cls = "") {
  return el("td", { "data-label": label, class: cls }, content);
}

// ---- rendering -----------------------------------------------------------------------

function renderProcesses() {
  const body = last.processes;
  if (!body) return;
  const rows = body.processes.map((p) => {
    const age = body.now - p.heartbeat_at;
    const mine = p.process_id === body.me;
    const lagged = p.loop_lag_ms >= 100; // a tenth of a second: every socket on it waits
    return el(
      "tr",
      { dataset: { process: p.process_id, pid: String(p.pid) } },
      cell(
        t("col.process"),
        el(
          "span",
          {},
          el("span", { class: "mono", title: p.process_id }, shortProcess(p.process_id)),
          mine ? el("span", { class: "tag" }, t("this_process")) : null,
        ),
      ),
      cell(t("col.host"), p.host),
      cell(t("col.pid"), String(p.pid), "n num"),
      cell(t("col.version"), p.version),
      cell(t("col.uptime"), duration(body.now - p.started_at), "n num"),
      cell(t("col.connections"), count(p.connections), "n num"),
      cell(t("col.rooms"), count(p.rooms), "n num"),
      cell(t("col.lag"), `${p.loop_lag_ms.toFixed(1)} ms`, `n num ${lagged ? "warn" : ""}`),
      cell(t("col.heartbeat"), t("ago", { s: seconds(age) }), "n num"),
    );
  });
  $("#proc-rows").replaceChildren(...rows);
  $("#proc-empty").hidden = rows.length > 0;
}

function offerChip(room, offer) {
  return el(
    "span",
    { class: "chip", dataset: { offer: offer.offer_id } },
    el("span", { class: "mono" }, offer.offer_id),
    ` ${offer.sku}`,
    write
      ? el(
          "button",
          {
            type: "button",
            class: "btn small danger end-offer",
            onclick: (e) => {
              e.stopPropagation();
              endOffer(room, offer);
            },
          },
          t("admin.end_offer"),
        )
      : null,
  );
}

function renderRooms() {
  const body = last.rooms;
  if (!body) return;
  const rows = body.rooms.map((r) => {
    const ob = r.outbox;
    const outbox =
      ob.entries > 0 && ob.oldest_age_ms !== null
        ? `${count(ob.entries)} · ${seconds(ob.oldest_age_ms)} s`
        : count(ob.entries);
    // Ten seconds: the persister normally stores an order within one batch.
    const stale = ob.entries > 0 && ob.oldest_age_ms > 10_000;
    const rec = r.reconcile;
    const delta = rec ? (rec.delta > 0 ? `+${rec.delta}` : String(rec.delta)) : "—";
    const open = () => select(r.room);
    return el(
      "tr",
      {
        class: `room-row ${r.room === selected ? "selected" : ""}`,
        dataset: { room: r.room, live: String(r.live) },
        onclick: open,
      },
      cell(
        t("col.room"),
        el("span", {}, el("span", { class: "mono" }, r.room), r.name ? ` ${r.name}` : ""),
      ),
      cell(
        t("col.live"),
        el(
          "span",
          { class: "badge", dataset: { live: String(r.live) } },
          t(r.live ? "live.on" : "live.off"),
        ),
      ),
      cell(t("col.viewers"), count(r.viewers), "n num"),
      cell(t("col.seq"), count(r.seq), "n num"),
      cell(t("col.history"), count(r.history), "n num"),
      cell(t("col.outbox"), outbox, `n num ${stale ? "warn" : ""}`),
      cell(
        t("col.reconcile"),
        el(
          "span",
          { title: rec ? new Date(rec.since_ms).toISOString() : "", dataset: { reconcile: delta } },
          delta,
        ),
        `n num ${rec && rec.delta !== 0 ? "warn" : ""}`,
      ),
      cell(
        t("col.offers"),
        r.offers.length
          ? el("span", { class: "chips" }, ...r.offers.map((o) => offerChip(r.room, o)))
          : "—",
      ),
      cell(
        "",
        el(
          "button",
          {
            type: "button",
            class: "btn ghost small show-messages",
            onclick: (e) => {
              e.stopPropagation();
              open();
            },
          },
          t("admin.messages_btn"),
        ),
        "act",
      ),
    );
  });
  $("#room-rows").replaceChildren(...rows);
  $("#room-empty").hidden = rows.length > 0;
}

function renderDetail() {
  const box = $("#room-detail");
  box.hidden = selected === null;
  if (selected === null) return;
  setText($("#detail-h"), selected);
  const conns = last.connections?.room === selected ? last.connections.connections : [];
  setText($("#conn-h"), t("admin.connections", { n: conns.length }));
  const items = conns.map((c) =>
    el(
      "li",
      { dataset: { connId: c.conn_id, kind: c.kind } },
      el("span", { class: "mono conn-id", title: c.conn_id }, c.conn_id.split("@")[0]),
      el("span", { class: "tag" }, t(`kind.${c.kind}`)),
      el("span", { class: "muted" }, `${c.host} · ${c.pid}`),
      write
        ? el(
            "button",
            { type: "button", class: "btn small danger disconnect", onclick: () => disconnect(c) },
            t("admin.disconnect"),
          )
        : null,
    ),
  );
  if (!items.length) items.push(el("li", { class: "empty" }, t("admin.no_connections")));
  $("#conn-list").replaceChildren(...items);

  const msgs = last.messages?.room === selected ? last.messages.messages : [];
  setText($("#msg-h"), t("admin.messages", { n: msgs.length }));
  const list = $("#msg-list");
  // Follow new messages only if the reader is already at the bottom.
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  const lines = msgs.map((m) =>
    el(
      "li",
      { dataset: { seq: String(m.seq ?? ""), type: m.type }, class: m.removed ? "removed" : "" },
      el("span", { class: "num seq" }, `#${m.seq}`),
      el("span", { class: "num time" }, m.ts ? clock(m.ts) : ""),
      el("span", { class: "type" }, m.type),
      el("span", { class: "mono body" }, summary(m)),
    ),
  );
  if (!lines.length) lines.push(el("li", { class: "empty" }, t("admin.no_messages")));
  list.replaceChildren(...lines);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderAll() {
  document.body.dataset.write = String(write);
  const badge = $("#write-badge");
  badge.dataset.write = String(write);
  setText(badge, t(write ? "admin.writable" : "admin.readonly"));
  if (last.processes && last.rooms) {
    setText(
      $("#admin-sub"),
      t("admin.updated", { n: last.processes.processes.length, m: last.rooms.rooms.length }),
    );
  }
  renderProcesses();
  renderRooms();
  renderDetail();
}

// ---- data ----------------------------------------------------------------------------

async function refresh() {
  const room = selected;
  const [processes, rooms, messages, connections] = await Promise.all([
    api("/api/admin/processes"),
    api("/api/admin/rooms"),
    room ? api(`/api/admin/rooms/${encodeURIComponent(room)}/messages?limit=${MESSAGES}`) : null,
    room ? api(`/api/admin/rooms/${encodeURIComponent(room)}/connections`) : null,
  ]);
  write = Boolean(processes.write);
  last = { processes, rooms, messages, connections };
  renderAll();
}

async function tick() {
  clearTimeout(timer);
  if (stopped) return;
  try {
    await refresh();
    banner.update("open");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      tokens.forget();
      if (tokens.from === "link") return fatal(t("err.token_expired"));
      token = null;
    } else if (err instanceof ApiError && err.status === 403) {
      return fatal(t("admin.not_hq"));
    }
    banner.update("reconnecting");
  }
  if (!token && !(await getToken())) return;
  timer = setTimeout(tick, REFRESH_MS);
}

async function getToken() {
  try {
    const got = await tokens.get();
    if (!got.token) {
      fatal(t(got.from === "expired" ? "err.token_expired" : "admin.token_required"));
      return false;
    }
    token = got.token;
    return true;
  } catch {
    return true; // network: try again on the next tick
  }
}

function select(room) {
  selected = room;
  last.messages = last.connections = null;
  renderAll();
  // On a phone the detail sits below every room: bring it into view.
  $("#room-detail").scrollIntoView({ block: "start", behavior: "smooth" });
  tick();
}

// ---- actions -------------------------------------------------------------------------

/** The in-page confirmation (a stray click on a live system is expensive). */
function confirmed(text) {
  const dialog = $("#confirm");
  setText($("#confirm-text"), text);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function act(path, done) {
  try {
    const body = await api(path, { method: "POST", body: {} });
    toast(body.status === "requested" ? t("admin.requested") : t(done));
  } catch (err) {
    toast(errorText(err.code, err.message), "error");
  }
  tick();
}

async function endOffer(room, offer) {
  const text = t("admin.confirm_end", { room, offer: offer.offer_id, sku: offer.sku });
  if (!(await confirmed(text))) return;
  const [r, o] = [encodeURIComponent(room), encodeURIComponent(offer.offer_id)];
  await act(`/api/admin/rooms/${r}/offers/${o}/end`, "admin.done_end");
}

async function disconnect(conn) {
  if (!(await confirmed(t("admin.confirm_disconnect", { conn: conn.conn_id })))) return;
  const c = encodeURIComponent(conn.conn_id);
  await act(`/api/admin/connections/${c}/disconnect`, "admin.done_disconnect");
}

// ---- start ---------------------------------------------------------------------------

const relabel = bindLangToggle();
onLangChange(() => {
  relabel();
  renderAll();
});
$("#detail-close").addEventListener("click", () => {
  selected = null;
  renderAll();
});
if (await getToken()) tick();
