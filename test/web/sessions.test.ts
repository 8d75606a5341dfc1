import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { cookieValue, originAllowed, ownOrigin } from "../../src/auth.js";
import { HOME_PRINCIPAL } from "../../src/rpc/connection-context.js";
import { WebSessions } from "../../src/web/sessions.js";

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** The home's token: a credential that never expires. */
const HOME = { principal: HOME_PRINCIPAL, credentialExpiresAt: null };

/** A signed-in page: both halves of its session. */
const signIn = (sessions: WebSessions, grant: { principal: typeof HOME_PRINCIPAL; credentialExpiresAt: number | null } = HOME) => {
  const signed = sessions.redeem(sessions.mintCode(grant).code)!;
  return { id: signed.id, key: signed.key, check: () => sessions.check(signed.id, signed.key) };
};

const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe("web sessions", () => {
  it("a code becomes a session once; a second exchange of the same code gets nothing", () => {
    const sessions = new WebSessions();
    const { code } = sessions.mintCode(HOME);
    const first = sessions.redeem(code);
    expect(first?.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first?.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessions.redeem(code)).toBeNull();
    expect(sessions.check(first!.id, first!.key)).not.toBeNull();
  });

  it("a session is its cookie and its page's key together: either alone, or with another's, opens nothing", () => {
    const sessions = new WebSessions();
    const a = signIn(sessions);
    const b = signIn(sessions);
    expect(sessions.check(a.id, null)).toBeNull();
    expect(sessions.check(null, a.key)).toBeNull();
    expect(sessions.check(a.id, b.key)).toBeNull();
    expect(sessions.check(a.id, a.id)).toBeNull();
    expect(a.check()?.principal).toEqual(HOME_PRINCIPAL);
  });

  it("a code is refused once its minute has passed, and an unknown code is refused", () => {
    const time = clock();
    const sessions = new WebSessions({ now: time.now, codeTtlMs: 60_000 });
    const { code } = sessions.mintCode(HOME);
    time.advance(60_000);
    expect(sessions.redeem(code)).toBeNull();
    expect(sessions.redeem("made-up")).toBeNull();
    expect(sessions.size).toEqual({ codes: 0, sessions: 0 });
  });

  it("keeps at most maxCodes codes: minting another drops the oldest", () => {
    const sessions = new WebSessions({ maxCodes: 2 });
    const oldest = sessions.mintCode(HOME).code;
    const middle = sessions.mintCode(HOME).code;
    const newest = sessions.mintCode(HOME).code;
    expect(sessions.size.codes).toBe(2);
    expect(sessions.redeem(oldest)).toBeNull();
    expect(sessions.redeem(middle)).not.toBeNull();
    expect(sessions.redeem(newest)).not.toBeNull();
  });

  it("a session idle longer than idleMs is gone; using it keeps it alive", () => {
    const time = clock();
    const sessions = new WebSessions({ now: time.now, idleMs: 1_000 });
    const kept = signIn(sessions);
    const idle = signIn(sessions);
    for (let i = 0; i < 3; i++) {
      time.advance(600);
      expect(kept.check()).not.toBeNull();
    }
    expect(idle.check()).toBeNull();
  });

  it("a session with an open page connection does not expire, and lives idleMs after it closes", () => {
    const time = clock();
    const sessions = new WebSessions({ now: time.now, idleMs: 1_000 });
    const page = signIn(sessions);
    const detach = sessions.attach(page.id, { close: () => {} });
    time.advance(5_000);
    expect(page.check()).not.toBeNull();
    detach();
    time.advance(999);
    expect(page.check()).not.toBeNull();
    time.advance(1_000);
    expect(page.check()).toBeNull();
  });

  it("ends at its credential's expiry: use and open connections never extend it past that", () => {
    const time = clock();
    const sessions = new WebSessions({ now: time.now, idleMs: 60_000 });
    const page = signIn(sessions, { principal: HOME_PRINCIPAL, credentialExpiresAt: time.now() + 10_000 });
    const closed: string[] = [];
    sessions.attach(page.id, { close: (_code, reason) => closed.push(reason) });
    time.advance(9_000);
    expect(page.check()?.expiresAt).toBe(time.now() + 1_000);
    time.advance(1_000);
    expect(page.check()).toBeNull();
    expect(closed).toEqual(["signed out: session expired"]);
  });

  it("a code lives no longer than its credential", () => {
    const time = clock();
    const sessions = new WebSessions({ now: time.now });
    const { code, expiresAt } = sessions.mintCode({ principal: HOME_PRINCIPAL, credentialExpiresAt: time.now() + 5_000 });
    expect(expiresAt).toBe(time.now() + 5_000);
    time.advance(5_000);
    expect(sessions.redeem(code)).toBeNull();
  });

  it("keeps at most maxSessions: a new one signs out the one used longest ago, closing its connections", () => {
    const sessions = new WebSessions({ maxSessions: 2 });
    const a = signIn(sessions);
    const b = signIn(sessions);
    const closed: string[] = [];
    sessions.attach(b.id, { close: (_code, reason) => closed.push(reason) });
    a.check(); // a is now the most recently used
    const c = signIn(sessions);
    expect(b.check()).toBeNull();
    expect(closed).toEqual(["signed out: too many sessions"]);
    expect(a.check()).not.toBeNull();
    expect(c.check()).not.toBeNull();
  });

  it("signing out ends the session and closes its page connections with 1008", () => {
    const sessions = new WebSessions();
    const page = signIn(sessions);
    const closed: number[] = [];
    sessions.attach(page.id, { close: (code) => closed.push(code) });
    expect(sessions.end(page.id)).toBe(true);
    expect(closed).toEqual([1008]);
    expect(page.check()).toBeNull();
    expect(sessions.end(page.id)).toBe(false);
  });

  it("a connection attached to a session that is gone is closed at once", () => {
    const sessions = new WebSessions();
    const closed: string[] = [];
    sessions.attach("nothing", { close: (_code, reason) => closed.push(reason) });
    expect(closed).toEqual(["signed out"]);
  });
});

describe("the server's own origin", () => {
  it("is http:// plus the Host header when the host is an IP address or localhost", () => {
    expect(ownOrigin(request({ host: "127.0.0.1:7420" }))).toBe("http://127.0.0.1:7420");
    expect(ownOrigin(request({ host: "localhost:7420" }))).toBe("http://localhost:7420");
    expect(ownOrigin(request({ host: "[::1]:7420" }))).toBe("http://[::1]:7420");
    expect(ownOrigin(request({ host: "192.168.1.20:7420" }))).toBe("http://192.168.1.20:7420");
  });

  it("is not a DNS name (which another site could point at this server) unless it is the configured host", () => {
    expect(ownOrigin(request({ host: "evil.example:7420" }))).toBeNull();
    expect(ownOrigin(request({ host: "build-box.lan:7420" }), ["build-box.lan"])).toBe("http://build-box.lan:7420");
  });

  it("is nothing for a missing or malformed Host", () => {
    expect(ownOrigin(request({}))).toBeNull();
    expect(ownOrigin(request({ host: "127.0.0.1:7420/x" }))).toBeNull();
    expect(ownOrigin(request({ host: "user@127.0.0.1:7420" }))).toBeNull();
  });

  it("is allowed at the upgrade besides the listed origins; other origins are not", () => {
    expect(originAllowed(request({ host: "127.0.0.1:7420", origin: "http://127.0.0.1:7420" }), [])).toBe(true);
    expect(originAllowed(request({ host: "127.0.0.1:7420", origin: "http://127.0.0.1:7421" }), [])).toBe(false);
    expect(originAllowed(request({ host: "evil.example:7420", origin: "http://evil.example:7420" }), [])).toBe(false);
    expect(originAllowed(request({ host: "127.0.0.1:7420", origin: "http://localhost:5173" }), ["http://localhost:5173"])).toBe(true);
    expect(originAllowed(request({ host: "127.0.0.1:7420" }), [])).toBe(true);
  });

  it("reads one cookie among several", () => {
    expect(cookieValue(request({ cookie: "a=1; spool_session_7420=abc; b=2" }), "spool_session_7420")).toBe("abc");
    expect(cookieValue(request({ cookie: "xspool_session_7420=abc" }), "spool_session_7420")).toBeNull();
    expect(cookieValue(request({}), "spool_session_7420")).toBeNull();
  });
});
