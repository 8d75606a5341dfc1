import { statSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { locateServer, serverUrl } from "../src/acp/server.js";
import { SpoolClient } from "../src/client/spool-client.js";
import { ConnectError } from "../src/client/ws-transport.js";
import type { Transport } from "../src/rpc/transport.js";
import { Scavenger } from "../src/scavenger.js";
import { wsTransport } from "../src/transports.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

/** A TCP listener that records every byte it is sent and answers nothing: someone else's process on a port. */
function listenerThatRecords(): Promise<{ server: Server; port: number; received: () => string }> {
  let received = "";
  const server = createServer((socket) => socket.on("data", (d) => (received += d.toString("latin1"))));
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port, received: () => received })),
  );
}

const opened = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });

describe("transports: the home's Unix socket, and the server's proof over TCP", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts.stop());

  it("listens on spool.sock in the home, 0600 in a 0700 home, and serves it like TCP", async () => {
    expect(ts.server.localUrl).toBe(`ws+unix://${ts.server.config.socketPath}:/`);
    expect(statSync(ts.server.config.socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(ts.home).mode & 0o777).toBe(0o700);
    const client = await SpoolClient.connect(ts.server.localUrl!, { token: ts.server.token });
    expect(await client.call("ping", {})).toMatchObject({ pong: true });
    client.close();
  });

  it("over TCP, a listener that is not the server gets no token, and the client says why", async () => {
    const impostor = await listenerThatRecords();
    impostor.server.on("connection", (socket) => socket.on("data", () => socket.end("HTTP/1.1 204 No Content\r\nSpool-Proof: 00\r\n\r\n")));
    const error = await SpoolClient.connect(`ws://127.0.0.1:${impostor.port}/`, { token: ts.server.token }).catch((e: unknown) => e);
    impostor.server.close();
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).unproven).toBe(true);
    expect((error as Error).message).toMatch(/did not prove it is the Spool server holding this token, and the token was not sent/);
    expect(impostor.received()).toContain("spool-proof");
    expect(impostor.received()).not.toContain(ts.server.token);
    expect(impostor.received()).not.toMatch(/authorization/i);
  });

  it("a relay from another port to the real server gets a proof for the server's port, which the client refuses", async () => {
    let relayed = "";
    const relay = createServer((inbound) => {
      const outbound = connect({ host: "127.0.0.1", port: ts.server.port });
      inbound.on("data", (d) => {
        relayed += d.toString("latin1");
        outbound.write(d);
      });
      outbound.pipe(inbound);
      inbound.on("close", () => outbound.destroy());
      outbound.on("error", () => inbound.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const port = (relay.address() as { port: number }).port;
    const error = await SpoolClient.connect(`ws://127.0.0.1:${port}/`, { token: ts.server.token }).catch((e: unknown) => e);
    relay.close();
    expect((error as Error).message).toMatch(/a wrong proof: .*the token was not sent/);
    expect(relayed).not.toContain(ts.server.token);
  });

  it("a principal's credential gets the proof over TCP (its id, the hash of its secret), and a revoked one does not", async () => {
    const admin = await SpoolClient.connect(ts.server.url, { token: ts.server.token });
    const { token } = await admin.call("token/create", { name: "tcp-viewer", role: "viewer" });
    const viewer = await SpoolClient.connect(ts.server.url, { token });
    expect(await viewer.call("ping", {})).toMatchObject({ pong: true });
    viewer.close();
    await admin.call("token/revoke", { name: "tcp-viewer" });
    admin.close();
    const error = await SpoolClient.connect(ts.server.url, { token }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).status).toBe(401);
  });

  it("the ACP and MCP bridges look for the home's socket at every connection: TCP only while there is none", async () => {
    const location = locateServer({}, { SPOOL_HOME: ts.home, SPOOL_PORT: "7999" });
    expect(serverUrl(location)).toBe(`ws+unix://${ts.server.config.socketPath}:/`);
    const elsewhere = locateServer({}, { SPOOL_HOME: join(ts.home, "no-server-here"), SPOOL_PORT: "7999" });
    expect(serverUrl(elsewhere)).toBe("ws://127.0.0.1:7999/");
    // --server names the server: never the socket.
    expect(serverUrl(locateServer({ server: ts.server.url }, { SPOOL_HOME: ts.home }))).toBe(ts.server.url);
  });

  it("a wrong token is refused before anything replayable is sent (401, no proof)", async () => {
    const error = await SpoolClient.connect(ts.server.url, { token: "f".repeat(64) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).status).toBe(401);
  });
});

describe("transports: connections that have not authenticated", () => {
  let ts: TestServer;
  const idle: Socket[] = [];
  beforeAll(async () => {
    // No grace: every connection counts as idle from its accept (the grace is in connection-burst.test.ts).
    ts = await startTestServer({ limits: { maxUnauthenticatedConnections: 8, maxUnauthenticatedPerAddress: 4, authDeadlineMs: 60_000, authGraceMs: 0 } });
  });
  afterEach(() => {
    for (const socket of idle.splice(0)) socket.destroy();
  });
  afterAll(() => ts.stop());

  it("more idle TCP connections than the cap: the oldest are closed, and an authenticated client still connects and works", async () => {
    const already = await SpoolClient.connect(ts.server.url, { token: ts.server.token });
    const closed: Socket[] = [];
    let enoughClosed!: () => void;
    const thirtySixClosed = new Promise<void>((resolve) => (enoughClosed = resolve));
    for (let i = 0; i < 40; i++) {
      const socket = await opened(ts.server.port);
      socket.once("close", () => {
        closed.push(socket);
        if (closed.length === 36) enoughClosed();
      });
      idle.push(socket);
    }
    const fresh = await SpoolClient.connect(ts.server.url, { token: ts.server.token });
    expect(await fresh.call("ping", {})).toMatchObject({ pong: true });
    // The one authenticated before the flood was never counted, and is still served.
    expect(await already.call("ping", {})).toMatchObject({ pong: true });
    // Of the 40 idle ones, at most the per-address cap is left waiting.
    await thirtySixClosed;
    expect(idle.filter((s) => !s.destroyed && !closed.includes(s)).length).toBeLessThanOrEqual(4);
    fresh.close();
    already.close();
  });

  it("an idle connection is closed at the deadline", async () => {
    const quick = await startTestServer({ limits: { authDeadlineMs: 200 } });
    try {
      const socket = await opened(quick.server.port);
      idle.push(socket);
      const started = Date.now();
      await new Promise((resolve) => socket.once("close", resolve));
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    } finally {
      await quick.stop();
    }
  });
});

describe("transports: a server connection's WebSocket (wsTransport)", () => {
  /** A ws server whose one connection is wrapped in wsTransport and handed to `act`; the client's messages and close code. */
  async function exchange(act: (transport: Transport) => void): Promise<{ messages: string[]; code: number; reason: string }> {
    const http = createHttpServer();
    const wss = new WebSocketServer({ server: http });
    wss.on("connection", (ws, request) => act(wsTransport(ws, request.socket as Socket, new Scavenger(2 ** 30))));
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    try {
      const client = new WebSocket(`ws://127.0.0.1:${(http.address() as { port: number }).port}/`);
      const messages: string[] = [];
      client.on("message", (data) => messages.push(data.toString()));
      const [code, reason] = await new Promise<[number, Buffer]>((resolve) => client.once("close", (c, r) => resolve([c, r])));
      return { messages, code, reason: reason.toString() };
    } finally {
      wss.close();
      http.close();
    }
  }

  it("a message sent, then close(1001) and terminate in the same tick, as a stopping server does: both reach the client", async () => {
    const seen = await exchange((t) => {
      t.send("the last notification");
      t.close(1001, "server shutting down");
      t.terminate?.();
    });
    expect(seen).toEqual({ messages: ["the last notification"], code: 1001, reason: "server shutting down" });
  });

  it("messages sent in one tick all arrive, in order, before a close in a later one", async () => {
    const seen = await exchange((t) => {
      for (let i = 0; i < 100; i++) t.send(`m${i}`);
      setImmediate(() => t.close(1000, "done"));
    });
    expect(seen.messages).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    expect(seen.code).toBe(1000);
  });
});
