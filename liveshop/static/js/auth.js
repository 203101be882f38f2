// Where a page gets its token. Production links carry it in the URL fragment
// (/rooms/s001#token=…), which never reaches server logs; a demo server hands one out at
// /api/demo/token. Either way it is kept in sessionStorage so a reload stays the same user.

const FRAGMENT_KEY = "token";

function storageKey(role, room) {
  return `liveshop:token:${role}:${room}`;
}

function readStored(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeStored(key, value) {
  try {
    if (value) sessionStorage.setItem(key, value);
    else sessionStorage.removeItem(key);
  } catch {
    // Storage may be disabled in some in-app browsers; the token then lives for this page only.
  }
}

/** Claims of a JWT without checking it (the server checks); null if it is not a JWT. */
export function jwtClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) =>
      c.charCodeAt(0),
    );
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

function expired(token) {
  const exp = jwtClaims(token)?.exp;
  // Thirty seconds of slack: a token about to expire would fail right after the hello.
  return typeof exp === "number" && exp * 1000 < Date.now() + 30_000;
}

/**
 * Token source for one page; `role` is viewer, broadcaster, staff (the store page) or hq.
 * `get()` resolves to {token, from} where `from` is "link", "demo" or "none" (anonymous).
 * It throws on network failure, which the socket treats like a failed connection attempt
 * (retry with backoff), and on a refusal of the demo endpoint (the error's `status`).
 */
export class TokenSource {
  constructor({ role, room }) {
    this.role = role;
    this.room = room;
    this.key = storageKey(role, room);
    this.from = "none";
    this.takeFromFragment();
  }

  /** Move a #token=… into storage and drop it from the address bar, so it is not shared
   * along with a copied link or a screenshot. */
  takeFromFragment() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const token = params.get(FRAGMENT_KEY);
    if (!token) return;
    writeStored(this.key, token);
    writeStored(`${this.key}:from`, "link");
    params.delete(FRAGMENT_KEY);
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }

  async get() {
    const stored = readStored(this.key);
    if (stored && !expired(stored)) {
      this.from = readStored(`${this.key}:from`) || "demo";
      return { token: stored, from: this.from };
    }
    if (stored && readStored(`${this.key}:from`) === "link") {
      // A link token that expired cannot be renewed here; the page says so.
      this.from = "expired";
      return { token: null, from: "expired" };
    }
    // `room` is the documented parameter; `room_id` is sent too for servers that read that.
    const query = new URLSearchParams({ role: this.role, room: this.room, room_id: this.room });
    const res = await fetch(`/api/demo/token?${query}`, { cache: "no-store" });
    if (res.status === 404) {
      this.from = "none";
      return { token: null, from: "none" };
    }
    if (!res.ok) {
      // `status` lets a page tell "this server hands out no such token" (400/403: say so)
      // from "the server is down" (5xx: try again).
      const err = new Error(`token endpoint answered ${res.status}`);
      err.status = res.status;
      throw err;
    }
    const body = await res.json();
    writeStored(this.key, body.token);
    writeStored(`${this.key}:from`, "demo");
    this.from = "demo";
    return { token: body.token, from: "demo" };
  }

  /** The server refused the token: forget it so the next attempt fetches a fresh one. */
  forget() {
    if (readStored(`${this.key}:from`) === "link") return;
    writeStored(this.key, null);
  }
}
