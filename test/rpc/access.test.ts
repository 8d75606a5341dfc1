import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { SpoolClient } from "../../src/client/spool-client.js";
import { connectWebSocket } from "../../src/client/ws-transport.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("access at the WebSocket upgrade", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ allowedOrigins: ["http://localhost:5173"], limits: { maxMessageBytes: 64 * 1024 } });
  });
  afterAll(() => ts.stop());

  it("creates the token file with mode 0600 in the Spool home", () => {
    const file = join(ts.home, "token");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8").trim()).toBe(ts.server.token);
  });

  it("refuses a connection without a token with HTTP 401", async () => {
    await expect(connectWebSocket(ts.server.url, { token: "" })).rejects.toMatchObject({ status: 401 });
  });

  it("refuses a wrong token with HTTP 401", async () => {
    await expect(connectWebSocket(ts.server.url, { token: "0".repeat(64) })).rejects.toMatchObject({ status: 401 });
  });

  it("accepts the token in the Authorization header or as the subprotocol spool.bearer.<token> (answered with spool)", async () => {
    for (const tokenInSubprotocol of [false, true]) {
      const c = new SpoolClient(await connectWebSocket(ts.server.url, { token: ts.server.token, tokenInSubprotocol }));
      expect((await c.call("ping", {})).pong).toBe(true);
      c.close();
    }
    const socket = new WebSocket(ts.server.url, ["spool", `spool.bearer.${ts.server.token}`]);
    await new Promise((r) => socket.once("open", r));
    expect(socket.protocol).toBe("spool");
    socket.close();
    await expect(connectWebSocket(ts.server.url, { token: "0".repeat(64), tokenInSubprotocol: true })).rejects.toMatchObject({ status: 401 });
  });

  it("refuses the token in the URL (?token=) with HTTP 401 saying to use the Authorization header, even with the header too", async () => {
    const refused = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const socket = new WebSocket(`${ts.server.url}?token=${ts.server.token}`, { headers });
        socket.once("open", () => reject(new Error("the upgrade was accepted")));
        socket.once("unexpected-response", (_req, res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (part: string) => {
            body += part;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
      });
    for (const headers of [{}, { Authorization: `Bearer ${ts.server.token}` }] as Record<string, string>[]) {
      const { status, body } = await refused(headers);
      expect(status).toBe(401);
      expect(body).toMatch(/not accepted in the URL/);
      expect(body).toContain("Authorization: Bearer");
    }
  });

  it("refuses a browser Origin that is not allowed with HTTP 403, even with the token", async () => {
    await expect(connectWebSocket(ts.server.url, { token: ts.server.token, origin: "http://evil.example" })).rejects.toMatchObject({ status: 403 });
  });

  it("accepts an explicitly allowed Origin", async () => {
    const c = new SpoolClient(await connectWebSocket(ts.server.url, { token: ts.server.token, origin: "http://localhost:5173" }));
    expect((await c.call("ping", {})).pong).toBe(true);
    c.close();
  });

  it("binds to loopback by default", () => {
    expect(ts.server.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it("closes a connection that sends an oversized frame with 1009 and keeps serving others", async () => {
    const other = await ts.clientIn("alpha");
    const socket = new WebSocket(ts.server.url, { headers: { Authorization: `Bearer ${ts.server.token}` } });
    await new Promise((r) => socket.once("open", r));
    const closed = new Promise<number>((r) => socket.once("close", (code) => r(code)));
    socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(100 * 1024) } }));
    expect(await closed).toBe(1009);
    expect((await other.call("run/list", {})).runs).toEqual([]);
    const fresh = await ts.clientIn("alpha");
    expect((await fresh.call("ping", {})).pong).toBe(true);
  });

  it("answers plain HTTP with the web view's page only, which holds no data (other paths 404)", async () => {
    const res = await fetch(ts.server.url.replace("ws:", "http:"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect((await fetch(`${ts.server.url.replace("ws:", "http:")}runs`)).status).toBe(404);
  });
});
