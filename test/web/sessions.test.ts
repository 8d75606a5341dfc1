import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { cookieValue, originAllowed, ownOrigin } from "../../src/auth.js";
import { HOME_PRINCIPAL } from "../../src/rpc/connection-context.js";
import { WebSessions } from "../../src/web/sessions.js";

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe("web sessions", () => {
  it("a code becomes a session once; a second exchange of the same code gets nothing", () => {
    const sessions = new WebSessions();
    const { code } = sessions.mintCode(HOME_PRINCIPAL);
    const first = sessions.redeem(code);
    expect(first?.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessions.redeem(code)).toBeNull();
    expect(sessions.check(first!.id)).not.toBeNull();
  });

  it("a code is refused once its minute has passed, and an unknown code is refused", () => {
    const time = clock();
    const sessions = new WebSessions({ now: time.now, codeTtlMs: 60_000 });
    const { code } = sessions.mintCode(HOME_PRINCIPAL);
    time.advance(60_000);
    expect(sessions.redeem(code)).toBeNull();
    expect(sessions.redeem("made-up")).toBeNull();
    expect(sessions.size).toEqual({ codes: 0, sessions: 0 });
  });

  it("keeps at most maxCodes codes: minting another drops the oldest", () => {
    const sessions = new WebSessions({ maxCodes: 2 });
    const oldest = sessions.mintCode(HOME_PRINCIPAL).code;
    const middle = sessions.mintCode(HOME_PRINCIPAL).code;
    const newest = sessions.mintCode(HOME_PRINCIPAL).code;
    expect(sessions.size.codes).toBe(2);
    expect(sessions.redeem(oldest)).toBeNull();
    expect(sessions.redeem(middle)).not.toBeNull();
    expect(sessions.redeem(newest)).not.toBeNull();
  });

  it("a session idle longer than idleMs is gone; using it keeps it alive", () => {
    const time = clock();
    const sessions = new WebSessions({ now: time.now, idleMs: 1_000 });
    const kept = sessions.redeem(sessions.mintCode(HOME_PRINCIPAL).code)!.id;
    const idle = sessions.redeem(sessions.mintCode(HOME_PRINCIPAL).code)!.id;
    for (let i = 0; i < 3; i++) {
      time.advance(600);
      expect(sessions.check(kept)).not.toBeNull();
    }
    expect(sessions.check(idle)).toBeNull();
  });

  it("a session with an open page connection does not expire, and lives idleMs after it closes", () => {
    const time = clock();
    const sessions = new WebSessions({ now: time.now, idleMs: 1_000 });
    const id = sessions.redeem(sessions.mintCode(HOME_PRINCIPAL).code)!.id;
    const detach = sessions.attach(id, { close: () => {} });
    time.advance(5_000);
    expect(sessions.check(id)).not.toBeNull();
    detach();
    time.advance(999);
    expect(sessions.check(id)).not.toBeNull();
    time.advance(1_000);
    expect(sessions.check(id)).toBeNull();
  });

  it("keeps at most maxSessions: a new one signs out the one used longest ago, closing its connections", () => {
    const sessions = new WebSessions({ maxSessions: 2 });
    const a = sessions.redeem(sessions.mintCode(HOME_PRINCIPAL).code)!.id;
    const b = sessions.redeem(sessions.mintCode(HOME_PRINCIPAL).code)!.id;
    const closed: string[] = [];
    sessions.attach(b, { close: (_code, reason) => closed.push(reason) });
    sessions.check(a); // a is now the most recently used
    const c = sessions.redeem(sessions.mintCode(HOME_PRINCIPAL).code)!.id;
    expect(sessions.check(b)).toBeNull();
    expect(closed).toEqual(["signed out: too many sessions"]);
    expect(sessions.check(a)).not.toBeNull();
    expect(sessions.check(c)).not.toBeNull();
  });

  it("signing out ends the session and closes its page connections with 1008", () => {
    const sessions = new WebSessions();
    const id = sessions.redeem(sessions.mintCode(HOME_PRINCIPAL).code)!.id;
    const closed: number[] = [];
    sessions.attach(id, { close: (code) => closed.push(code) });
    expect(sessions.end(id)).toBe(true);
    expect(closed).toEqual([1008]);
    expect(sessions.check(id)).toBeNull();
    expect(sessions.end(id)).toBe(false);
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
