import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** How long a body may take to arrive here (limits.bodyDeadlineMs): a body that never does is cut once it is past. */
const BODY_DEADLINE_MS = 1500;

/** What a browser on the server's own page sends, and an answer read whole. */
describe("the web view over HTTP", () => {
  let ts: TestServer;
  let base: string;
  let origin: string;
  beforeAll(async () => {
    ts = await startTestServer({ allowedOrigins: ["http://localhost:5173"], limits: { bodyDeadlineMs: BODY_DEADLINE_MS } });
    origin = `http://127.0.0.1:${ts.server.port}`;
    base = `${origin}/`;
  });
  afterAll(() => ts.stop());

  const mint = async (headers: Record<string, string> = { Authorization: `Bearer ${ts.server.token}` }) =>
    fetch(`${base}session/code`, { method: "POST", headers });
  const code = async () => ((await (await mint()).json()) as { code: string }).code;
  const exchange = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}session`, {
      method: "POST",
      headers: { Origin: origin, "Content-Type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  /** Signs in like the page does; returns the Cookie header to send, and the key the page keeps. */
  const signIn = async () => {
    const response = await exchange({ code: await code() });
    expect(response.status).toBe(200);
    const { key } = (await response.json()) as { key: string };
    return { cookie: response.headers.get("set-cookie")!.split(";")[0]!, key };
  };
  /** An upgrade with these headers, offering the subprotocols `spool` and the page's key when given. */
  const upgrade = (headers: Record<string, string>, key?: string) =>
    new Promise<{ status: number; socket?: WebSocket }>((resolve) => {
      const socket = new WebSocket(ts.server.url, key === undefined ? [] : ["spool", `spool.session.${key}`], { headers });
      socket.once("open", () => resolve({ status: 101, socket }));
      socket.once("unexpected-response", (_req, res) => resolve({ status: res.statusCode ?? 0 }));
      socket.once("error", () => resolve({ status: 0 }));
    });
  const rpc = (socket: WebSocket, method: string, params: unknown = {}) =>
    new Promise<{ result?: unknown; error?: unknown }>((resolve) => {
      socket.once("message", (data) => resolve(JSON.parse(data.toString())));
      socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }));
    });

  it("serves the page at / with a strict content security policy, and its assets from the package (nothing from elsewhere)", async () => {
    const page = await fetch(base);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBe(3);
    for (const ref of refs) {
      expect(ref).toMatch(/^\/assets\/spool\.[0-9a-f]{12}\.(js|css)$|^\/assets\/favicon\.[0-9a-f]{12}\.svg$/);
      const asset = await fetch(`${origin}${ref}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get("cache-control")).toContain("immutable");
    }
  });

  it("keeps the page's assets under 1 MB gzipped", async () => {
    const html = await (await fetch(base)).text();
    const paths = ["/", ...[...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)];
    let total = 0;
    for (const path of paths) {
      // Content-Length is what went over the wire (fetch decompresses the body itself).
      const response = await fetch(`${origin}${path}`, { headers: { "Accept-Encoding": "gzip" } });
      expect(response.headers.get("content-encoding")).toBe("gzip");
      total += Number(response.headers.get("content-length"));
    }
    expect(total).toBeGreaterThan(50_000);
    expect(total).toBeLessThan(1024 * 1024);
  });

  it("answers 404 for other paths and 405 for other methods", async () => {
    expect((await fetch(`${base}nothing-here`)).status).toBe(404);
    const post = await fetch(base, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("mints a one-time code only for the token: none, wrong, or a foreign Origin is refused", async () => {
    expect((await mint({})).status).toBe(401);
    expect((await mint({ Authorization: `Bearer ${"0".repeat(64)}` })).status).toBe(401);
    expect((await mint({ Authorization: `Bearer ${ts.server.token}`, Origin: "http://evil.example" })).status).toBe(403);
    const ok = await mint();
    expect(ok.status).toBe(201);
    const body = (await ok.json()) as { code: string; expiresInMs: number };
    // The server's mark, then the secret (256 bits).
    expect(body.code).toMatch(/^[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{43}$/);
    expect(body.expiresInMs).toBe(60_000);
  });

  it("refuses the token in the URL (POST /session/code?token=) with 401 saying to use the Authorization header, even with the header too", async () => {
    for (const headers of [{}, { Authorization: `Bearer ${ts.server.token}` }] as Record<string, string>[]) {
      const response = await fetch(`${base}session/code?token=${ts.server.token}`, { method: "POST", headers });
      expect(response.status).toBe(401);
      const body = (await response.json()) as { error: string };
      expect(body.error).toMatch(/not accepted in the URL/);
      expect(body.error).toContain("Authorization: Bearer");
      expect(body.error).not.toContain(ts.server.token);
    }
  });

  it("trades a code for an HttpOnly, SameSite=Strict session cookie and the page's key once; the same code again is 401", async () => {
    const minted = (await (await mint()).json()) as { code: string; url: string };
    expect(minted.url).toBe(base);
    const one = minted.code;
    const first = await exchange({ code: one });
    expect(first.status).toBe(200);
    const cookie = first.headers.get("set-cookie")!;
    // A paired device's cookie: its id and its secret; it lasts as long as a device may (400 days at most, browsers' own cap).
    expect(cookie).toMatch(
      new RegExp(`^spool_session_${ts.server.port}=[0-9a-f]{12}\\.[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=34560000$`),
    );
    expect(cookie).not.toContain(ts.server.token);
    const { key } = (await first.json()) as { key: string };
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cookie).not.toContain(key);
    const again = await exchange({ code: one });
    expect(again.status).toBe(401);
    expect(((await again.json()) as { error: string }).error).toMatch(/spool open/);
  });

  it("exchanges only from the server's own page, as JSON, with a code in it", async () => {
    expect((await exchange("{not json")).status).toBe(400);
    expect((await exchange({ code: 42 })).status).toBe(400);
    expect((await exchange({ code: "x".repeat(5000) })).status).toBe(413);
    expect((await exchange({ code: await code() }, { Origin: "http://evil.example" })).status).toBe(403);
    expect((await exchange({ code: await code() }, { "Content-Type": "text/plain" })).status).toBe(415);
  });

  it("a body that never arrives whole is answered 408 and its connection cut at limits.bodyDeadlineMs, as at /mcp and /acp", async () => {
    // Each of the page's routes that reads a body: the exchange, and minting a code (with the token).
    for (const [path, auth] of [
      ["/session", ""],
      ["/session/code", `Authorization: Bearer ${ts.server.token}\r\n`],
    ] as const) {
      const socket = connect({ host: "127.0.0.1", port: ts.server.port });
      let answer = "";
      socket.on("data", (data: Buffer) => {
        answer += data.toString("latin1");
      });
      const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(performance.now())));
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      const sent = performance.now();
      // The head at once, then one byte of a 1000-byte body, and nothing more.
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${ts.server.port}\r\nOrigin: ${origin}\r\n${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
      );
      const held = (await closed) - sent;
      expect(answer, path).toMatch(/^HTTP\/1\.1 408 /);
      expect(answer, path).toContain("limits.bodyDeadlineMs");
      // Cut at the deadline, not at Node's requestTimeout (300 s): the slack is for a busy machine.
      expect(held, path).toBeGreaterThanOrEqual(BODY_DEADLINE_MS - 50);
      expect(held, path).toBeLessThan(BODY_DEADLINE_MS + 20_000);
    }
  }, 60_000);

  it("any exchange attempt spends its code, a refused one too (issue 37): the right page after a foreign one gets 401", async () => {
    const refusals: Record<string, string>[] = [{ Origin: "http://evil.example" }, { Origin: "http://localhost:5173" }, { "Content-Type": "text/plain" }];
    for (const refused of refusals) {
      const one = await code();
      expect((await exchange({ code: one }, refused)).status).toBeGreaterThanOrEqual(403);
      expect((await exchange({ code: one })).status).toBe(401);
    }
  });

  it("tells a page whether its session is good and whose (GET /session): the cookie and the key together, never one alone", async () => {
    const { cookie, key } = await signIn();
    const good = await fetch(`${base}session`, { headers: { Cookie: cookie, "Spool-Session-Key": key } });
    expect(good.status).toBe(200);
    const body = (await good.json()) as { expiresAt: number; credentialExpiresAt: number | null; principal: unknown };
    expect(body.expiresAt).toBeGreaterThan(Date.now());
    expect(body).toMatchObject({ credentialExpiresAt: null, principal: { name: "admin", role: "admin" } });
    expect((await fetch(`${base}session`)).status).toBe(401);
    expect((await fetch(`${base}session`, { headers: { Cookie: cookie } })).status).toBe(401);
    expect((await fetch(`${base}session`, { headers: { Cookie: cookie, Origin: origin } })).status).toBe(401);
    expect((await fetch(`${base}session`, { headers: { "Spool-Session-Key": key } })).status).toBe(401);
    expect((await fetch(`${base}session`, { headers: { Cookie: `spool_session_${ts.server.port}=forged`, "Spool-Session-Key": key } })).status).toBe(401);
  });

  it("opens the WebSocket with the cookie from the server's own origin, and serves the project list before initialize", async () => {
    await ts.clientIn("listed");
    const { cookie, key } = await signIn();
    const { status, socket } = await upgrade({ Cookie: cookie, Origin: origin }, key);
    expect(status).toBe(101);
    expect(socket!.protocol).toBe("spool");
    const reply = (await rpc(socket!, "project/list")) as { result: { projects: { name: string; runs: number }[] } };
    expect(reply.result.projects.find((p) => p.name === "listed")).toMatchObject({ runs: 0, open: 0, waiting: 0, updatedAt: null });
    socket!.close();
  });

  it("refuses the session without the own Origin (403), and no cookie, a forged one, or the cookie without its key (401)", async () => {
    const { cookie, key } = await signIn();
    expect((await upgrade({ Cookie: cookie, Origin: "http://evil.example" }, key)).status).toBe(403);
    expect((await upgrade({ Cookie: cookie, Origin: "http://localhost:5173" }, key)).status).toBe(403);
    expect((await upgrade({ Cookie: cookie }, key)).status).toBe(403);
    expect((await upgrade({ Origin: origin }, key)).status).toBe(401);
    expect((await upgrade({ Cookie: `spool_session_${ts.server.port}=forged`, Origin: origin }, key)).status).toBe(401);
    expect((await upgrade({ Cookie: cookie, Origin: origin })).status).toBe(401);
    expect((await upgrade({ Cookie: cookie, Origin: origin }, "forged")).status).toBe(401);
    // The token still works from the own page's origin, as from any allowed one.
    const byToken = await upgrade({ Authorization: `Bearer ${ts.server.token}`, Origin: origin });
    expect(byToken.status).toBe(101);
    byToken.socket!.close();
  });

  it("signing out closes the session's connections with 1008 and the cookie stops working", async () => {
    const { cookie, key } = await signIn();
    const { socket } = await upgrade({ Cookie: cookie, Origin: origin }, key);
    const closed = new Promise<number>((resolve) => socket!.once("close", (code) => resolve(code)));
    const withKey = { Cookie: cookie, "Spool-Session-Key": key };
    expect((await fetch(`${base}session`, { method: "DELETE", headers: withKey })).status).toBe(403);
    // The cookie alone (what any server on the host gets) signs nobody out.
    expect((await fetch(`${base}session`, { method: "DELETE", headers: { Cookie: cookie, Origin: origin } })).status).toBe(204);
    expect((await fetch(`${base}session`, { headers: withKey })).status).toBe(200);
    const out = await fetch(`${base}session`, { method: "DELETE", headers: { ...withKey, Origin: origin } });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    expect(await closed).toBe(1008);
    expect((await upgrade({ Cookie: cookie, Origin: origin }, key)).status).toBe(401);
    expect((await fetch(`${base}session`, { headers: withKey })).status).toBe(401);
  });
});
