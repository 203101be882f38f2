// The console's REST calls (HQ's packs, the room's bands and pack, the next live), made with
// the same broadcaster token its socket says hello with (auth.js); the viewer page's
// reservations (预约) use it with the viewer's token. Owns no DOM and no page state; a
// refusal comes back as an ApiError with the server's code and details, so a panel can say
// why in the user's language.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message || code);
    this.status = status; // 0: the request never got an answer
    this.code = code;
    this.details = details;
  }
}

/**
 * `api(path, {method, body})` → the answer's JSON, or throws ApiError; `body` goes as JSON.
 * A demo token the server refuses (it ran out) is forgotten and the call made once more
 * with a fresh one; a link's token cannot be renewed here, so its 401 is the caller's to
 * show.
 * @param {import("./auth.js").TokenSource} tokens
 */
export function restClient(tokens) {
  return async function api(path, { method = "GET", body, retried = false } = {}) {
    let got;
    let res;
    try {
      got = await tokens.get();
      if (!got.token) throw new ApiError(401, "unauthorized", "");
      res = await fetch(path, {
        method,
        cache: "no-store",
        headers: {
          Authorization: `Bearer ${got.token}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError(0, "offline", String(err?.message ?? err));
    }
    const data = await res.json().catch(() => null);
    if (res.ok) return data;
    const { code = "unavailable", message = "", ...details } = data?.error ?? {};
    if (res.status === 401 && !retried && got.from === "demo") {
      tokens.forget();
      return api(path, { method, body, retried: true });
    }
    throw new ApiError(res.status, code, message, details);
  };
}
