// JSON over HTTP for HQ's editors: a bearer token from a TokenSource on every call, and
// the server's `{"error": {"code", "message", ...}}` turned into an ApiError. No DOM
// beyond `showError`, which writes such an error next to the form that caused it.

import { t } from "./i18n.js";
import { errorText } from "./ui.js";

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** A client for one page: `call(method, path, body?)` → the parsed JSON body. */
export function restClient(tokens) {
  return async function call(method, path, body) {
    let token = null;
    try {
      ({ token } = await tokens.get());
    } catch {
      throw new ApiError(0, "unavailable", "");
    }
    let res;
    try {
      res = await fetch(path, {
        method,
        cache: "no-store",
        headers: {
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "offline", "");
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      if (res.status === 401) tokens.forget(); // the next call fetches a fresh demo token
      const { code = "unavailable", message = "", ...details } = data?.error ?? {};
      throw new ApiError(res.status, code, message, details);
    }
    return data;
  };
}

/**
 * Show what went wrong in `box` (the form's error line): a string as it is; an ApiError's
 * code in the page's words, then the server's own message, which for HQ's editors names
 * the field or the band that refused; nothing for null.
 */
export function showError(box, what) {
  box.replaceChildren();
  if (!what) return;
  if (typeof what === "string") {
    box.append(what);
    return;
  }
  const api = what instanceof ApiError;
  const plain = api ? errorText(what.code, what.message) : t("hq.failed");
  box.append(plain);
  if (api && what.message && !plain.includes(what.message)) {
    box.append(" ", Object.assign(document.createElement("span"), {
      className: "error-detail",
      textContent: what.message,
    }));
  }
}
