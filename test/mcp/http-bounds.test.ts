import { writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LATEST_PROTOCOL_VERSION, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { McpHttpEndpoint, type McpHttpLimits } from "../../src/mcp/http.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/*
 * /mcp's bounds (issue 39), on an endpoint with small limits in front of a real Spool server: sessions, open
 * requests per session, idle sessions; and a resource subscription over HTTP.
 */

const silent = { info: () => undefined, warn: () => undefined };

describe("the /mcp endpoint's bounds", () => {
  let ts: TestServer;
  let http: Server;
  let endpoint: McpHttpEndpoint;
  let port = 0;
  // No session goes idle during the first test, however slow the machine; the second has an endpoint of its own.
  const limits: Partial<McpHttpLimits> = { maxSessions: 2, maxStreamsPerSession: 1, idleMs: 3_600_000 };

  beforeAll(async () => {
    ts = await startTestServer();
    endpoint = new McpHttpEndpoint({ ...options(), limits });
    http = createServer((request, response) => endpoint.handle(request, response));
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    port = (http.address() as { port: number }).port;
  }, 60_000);
  afterAll(async () => {
    await endpoint?.close();
    http?.closeAllConnections();
    http?.close();
    await ts?.stop();
  });

  const options = () => ({
    authenticate: async (request: import("node:http").IncomingMessage) =>
      request.headers.authorization === `Bearer ${ts.server.token}` ? { name: "token", role: "admin", credential: ts.server.token } : null,
    refusedOrigin: () => null,
    serverUrl: () => ts.server.url,
    version: "test",
    log: silent,
  });
  const url = () => `http://127.0.0.1:${port}/mcp?root=${encodeURIComponent(ts.root)}`;
  const headers = () => ({ "Content-Type": "application/json", Accept: "application/json, text/event-stream", Authorization: `Bearer ${ts.server.token}` });
  const initialize = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "bounds", version: "1" } },
  });

  /** Opens a session with a raw initialize; its id, and the answer's body when it is a refusal. */
  async function open(): Promise<{ status: number; id: string | null; body: string }> {
    const answer = await fetch(url(), { method: "POST", headers: headers(), body: initialize });
    const body = await answer.text();
    return { status: answer.status, id: answer.headers.get("mcp-session-id"), body };
  }

  it("a third session is refused (429, LIMIT_EXCEEDED naming maxSessions) while two are open; ending one (DELETE) makes room", async () => {
    const a = await open();
    const b = await open();
    expect([a.status, b.status]).toEqual([200, 200]);
    const c = await open();
    expect(c.status).toBe(429);
    expect(JSON.parse(c.body).error).toMatchObject({ code: -32031, data: { code: "LIMIT_EXCEEDED", limit: "maxSessions", bound: 2 } });
    expect(c.id).toBeNull();
    const ended = await fetch(url(), { method: "DELETE", headers: { ...headers(), "Mcp-Session-Id": a.id!, "Mcp-Protocol-Version": LATEST_PROTOCOL_VERSION } });
    expect(ended.status).toBe(200);
    await eventually(() => endpoint.sessions === 1, 5_000, "the ended session to go");
    const d = await open();
    expect(d.status).toBe(200);
    for (const id of [b.id, d.id])
      await fetch(url(), { method: "DELETE", headers: { ...headers(), "Mcp-Session-Id": id!, "Mcp-Protocol-Version": LATEST_PROTOCOL_VERSION } });
    await eventually(() => endpoint.sessions === 0, 5_000, "the sessions to go");
  });

  it("a session holds one request open at most here: with its GET stream open, a POST is 429; an idle session is closed, then 404", async () => {
    await endpoint.close();
    http.closeAllConnections();
    http.close();
    // Idle past 1 s: closed at the sweep after that (every idleMs), 1-2 s after its stream goes. Nothing here leaves the
    // session idle for long before then: the gaps between its requests are a few ms (ten times that on a busy machine).
    endpoint = new McpHttpEndpoint({ ...options(), limits: { ...limits, idleMs: 1_000 } });
    http = createServer((request, response) => endpoint.handle(request, response));
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    port = (http.address() as { port: number }).port;
    const { id } = await open();
    const session = { ...headers(), "Mcp-Session-Id": id!, "Mcp-Protocol-Version": LATEST_PROTOCOL_VERSION };
    await fetch(url(), { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) }).then((r) =>
      r.text(),
    );
    // The standalone SSE stream stays open (node:http: fetch would wait for its end).
    const stream = await new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
      const req = httpRequest(url(), { method: "GET", headers: { ...session, Accept: "text/event-stream" } }, resolve);
      req.on("error", reject);
      req.end();
    });
    expect(stream.statusCode).toBe(200);
    const busy = await fetch(url(), { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }) });
    expect(busy.status).toBe(429);
    stream.destroy();
    await eventually(() => endpoint.sessions === 0, 20_000, "the idle session to be closed");
    const gone = await fetch(url(), { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "ping" }) });
    expect(gone.status).toBe(404);
  });

  it("resources/subscribe over HTTP: notifications/resources/updated come on the session's stream as a command's output arrives", async () => {
    // An endpoint with the default limits (the SDK's client holds its GET stream and a POST open at once).
    const roomy = new McpHttpEndpoint({ ...options(), limits: {} });
    const server = createServer((request, response) => roomy.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const roomyUrl = url().replace(`:${port}/`, `:${(server.address() as { port: number }).port}/`);
    // A person's client in the project /mcp?root= names (found by its root, as the session's is).
    const person = await ts.client();
    await person.initialize(undefined, { root: ts.root });
    const client = new Client({ name: "subscriber", version: "1" }, { capabilities: {} });
    await client.connect(new StreamableHTTPClientTransport(new URL(roomyUrl), { requestInit: { headers: { Authorization: `Bearer ${ts.server.token}` } } }));
    try {
      const updates: string[] = [];
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
      const proposed = person.next("run/proposal", (p) => p.command.startsWith("echo 1; until"), 20_000);
      // The command's last line waits until the client has subscribed (a file in the project): a fixed pause could
      // end before a busy machine's subscription came, and no update would follow.
      const command = "echo 1; until [ -e subscribed ]; do sleep 0.05; done; echo 2";
      const call = client.callTool({ name: "run_command", arguments: { command, background: true } });
      const p = await proposed;
      await person.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
      await call;
      const uri = `spool://${p.run}/${p.path}`;
      await client.subscribeResource({ uri });
      writeFileSync(join(ts.root, "subscribed"), "");
      await eventually(() => updates.includes(uri), 20_000, "an update of the subscribed command");
      await client.unsubscribeResource({ uri });
    } finally {
      await client.close();
      await roomy.close();
      server.closeAllConnections();
      server.close();
    }
  }, 60_000);
});
