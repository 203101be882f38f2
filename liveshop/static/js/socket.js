// The room socket client (protocol v1): hello, resume, reconnect, heartbeat.
// Owns the connection and the room `seq` cursor; knows nothing about the DOM or page state.
// Pages get three callbacks: onStatus(status, detail), onWelcome(msg), onMessage(msg).

const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 5_000;
const STABLE_AFTER_MS = 5_000; // a connection that lived this long resets the backoff
const PING_EVERY_MS = 15_000;
const SILENCE_LIMIT_MS = 40_000; // mobile networks leave half-open sockets: give up on silence

// bye reasons after which trying again cannot help.
const TERMINAL_BYE = new Set(["unknown_room", "forbidden"]);
const TERMINAL_CLOSE = new Set([4403, 4404]);
// bye reasons that mean "your token is no good"; the page decides whether a new one helps.
const AUTH_BYE = new Set(["unauthorized", "invalid_token", "token_expired", "expired_token"]);

/** The websocket URL of a server path on this page's own host (both ports serve /ws/). */
export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

export class RoomSocket {
  /**
   * @param {object} o
   * @param {string} o.room room id
   * @param {() => Promise<{token: string|null}>} o.getToken called before every attempt
   * @param {string} o.lang protocol `lang` for hello
   */
  constructor({ room, getToken, lang, onStatus, onWelcome, onMessage, onAuthFailure }) {
    this.room = room;
    this.getToken = getToken;
    this.lang = lang;
    this.onStatus = onStatus ?? (() => {});
    this.onWelcome = onWelcome ?? (() => {});
    this.onMessage = onMessage ?? (() => {});
    this.onAuthFailure = onAuthFailure ?? (() => true);
    this.ws = null;
    this.lastSeq = null; // highest room seq applied; sent as resume_from
    this.welcomed = false;
    this.everWelcomed = false;
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.lastRx = 0;
    this.welcomedAt = 0;
    this.stopped = false;
    this.status = "idle";
  }

  start() {
    // A phone coming back online or to the foreground should not wait out a long backoff.
    addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    this.connect();
  }

  /** True once `welcome` arrived on the current connection: only then may pages send. */
  get ready() {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }

  send(msg) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** `lang` only travels in hello, so a language switch reconnects (resuming, no gap). */
  setLang(lang) {
    if (lang === this.lang) return;
    this.lang = lang;
    if (this.ws) this.drop(true);
  }

  /** Give up for good (e.g. the console has no token): no more attempts. */
  stop(reason) {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) this.drop(false);
    this.setStatus("closed", reason);
  }

  reconnectNow() {
    if (this.stopped) return;
    if (this.ws && this.welcomed) {
      // Probably fine, but a socket that slept in the background may be dead: probe it.
      this.ping();
      return;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.attempt = 0;
      this.connect();
    }
  }

  setStatus(status, detail) {
    this.status = status;
    this.onStatus(status, detail);
  }

  url() {
    return wsUrl(`/ws/rooms/${encodeURIComponent(this.room)}`);
  }

  async connect() {
    this.timer = null;
    if (this.stopped) return;
    this.setStatus(this.everWelcomed || this.attempt > 0 ? "reconnecting" : "connecting");
    let token = null;
    try {
      ({ token } = await this.getToken());
    } catch {
      this.scheduleReconnect(); // the server is probably down; same backoff as a failed socket
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.welcomed = false;
    ws.onopen = () => {
      const hello = { type: "hello", lang: this.lang };
      if (token) hello.token = token;
      if (this.lastSeq !== null) hello.resume_from = this.lastSeq;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => this.receive(ws, ev.data);
    ws.onclose = (ev) => this.closed(ws, ev.code, null);
    ws.onerror = () => {}; // always followed by close, which decides what to do
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    this.lastRx = Date.now();
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "welcome") {
      this.welcomed = true;
      this.everWelcomed = true;
      this.welcomedAt = Date.now();
      // resumed:false means "forget what you had": the cursor starts at the server's seq,
      // even if that is lower than ours (the room's history was reset).
      if (!msg.resumed || this.lastSeq === null) this.lastSeq = msg.seq ?? null;
      this.startHeartbeat();
      this.setStatus("open");
      this.onWelcome(msg);
      return;
    }
    if (msg.type === "bye") {
      this.closed(ws, null, msg.reason);
      return;
    }
    if (msg.type === "pong") return;
    if (typeof msg.seq === "number") {
      // Replays after a resume can overlap what we already applied; seq tells us.
      if (this.lastSeq !== null && msg.seq <= this.lastSeq) return;
      this.lastSeq = msg.seq;
    }
    this.onMessage(msg);
  }

  startHeartbeat() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastRx > SILENCE_LIMIT_MS) this.drop(true);
      else this.ping();
    }, PING_EVERY_MS);
  }

  ping() {
    if (this.ready) this.ws.send(JSON.stringify({ type: "ping", t: Date.now() }));
  }

  /** Abandon the current socket without waiting for a close handshake that may never come. */
  drop(reconnect) {
    const ws = this.ws;
    if (!ws) return;
    ws.onclose = ws.onmessage = ws.onopen = null;
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
    this.closed(ws, 1000, null, reconnect);
  }

  closed(ws, code, reason, forceReconnect = false) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.pingTimer);
    if (this.welcomed && Date.now() - this.welcomedAt >= STABLE_AFTER_MS) this.attempt = 0;
    this.welcomed = false;
    if (reason && ws.readyState !== WebSocket.CLOSED) {
      // After a bye the server closes; we stop listening now and let it finish.
      ws.onclose = ws.onmessage = null;
    }
    if (!forceReconnect && (TERMINAL_BYE.has(reason) || TERMINAL_CLOSE.has(code))) {
      this.stopped = true;
      this.setStatus("closed", reason ?? (code === 4404 ? "unknown_room" : "forbidden"));
      return;
    }
    if ((AUTH_BYE.has(reason) || code === 4401) && !this.onAuthFailure(reason ?? "unauthorized")) {
      this.stopped = true;
      this.setStatus("closed", reason);
      return;
    }
    if (forceReconnect && this.attempt === 0) {
      this.connect(); // language switch or dead-socket probe: no reason to wait
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.setStatus("reconnecting");
    // Exponential backoff with jitter, so a restarted server is not hit by every phone at once.
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
