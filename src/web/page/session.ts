import { connectBrowserWebSocket } from "../../client/browser-transport.js";
import { SpoolClient } from "../../client/spool-client.js";
import { SESSION_KEY_HEADER, SUBPROTOCOL_SESSION_PREFIX } from "../../protocol/page-session.js";
import type { SignedIn } from "./context.js";

/**
 * Where the page keeps its session's key: its origin's storage (scheme, host and port), which no page served on
 * another port can read, unlike the session cookie, which a browser sends to every port of the host (SPEC §2).
 */
const KEY_ITEM = "spool.session.key";

export const sessionKey = (): string | null => {
  try {
    return localStorage.getItem(KEY_ITEM);
  } catch {
    return null;
  }
};

export const keepKey = (key: string | null): void => {
  try {
    if (key === null) localStorage.removeItem(KEY_ITEM);
    else localStorage.setItem(KEY_ITEM, key);
  } catch {
    // Storage refused (a private mode's quota): the page works until it is reloaded.
  }
};

/** A request to /session with the page's key (its half of the session; the browser adds the cookie). */
export const sessionRequest = (init: RequestInit = {}) =>
  fetch("/session", {
    cache: "no-store",
    // Never waited on for ever: a page that reconnects asks first whether its session still stands.
    signal: AbortSignal.timeout(15_000),
    ...init,
    headers: { ...(init.headers as Record<string, string>), [SESSION_KEY_HEADER]: sessionKey() ?? "" },
  });

/**
 * The typed client over a WebSocket of the page's own server: the browser sends the session cookie with the upgrade,
 * the page offers its key as a subprotocol (a page cannot set headers there); nothing here holds a token. One
 * connection joins one project.
 */
export const connectPage = async () =>
  new SpoolClient(
    await connectBrowserWebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`, [
      "spool",
      `${SUBPROTOCOL_SESSION_PREFIX}${sessionKey() ?? ""}`,
    ]),
    { callTimeoutMs: CALL_TIMEOUT_MS },
  );

/**
 * How long the page waits for a call's answer: one that never comes fails (CallTimeoutError), and what it was for is
 * read again (run.ts Reread) or the page connects again (a join). A subscription has none (its replay may be long), nor
 * does what a second try would do twice (a prompt, a budget raised).
 */
export const CALL_TIMEOUT_MS = 30_000;

/** GET /session's answer. */
export interface SessionInfo {
  principal: SignedIn;
  device: { id: string; name: string };
}

export async function errorText(response: Response): Promise<string> {
  try {
    return String(((await response.json()) as { error?: string }).error ?? response.statusText);
  } catch {
    return response.statusText;
  }
}
