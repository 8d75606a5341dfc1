import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { createServer as createHttpServer, Agent as HttpAgent, request as httpRequest } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { locateServer, serverUrl } from "../src/acp/server.js";
import { clientProof, credentialId, PROOF_PATH, serverProof, tokenVerifier, unixEndpoint } from "../src/client/server-proof.js";
import { SpoolClient } from "../src/client/spool-client.js";
import { ConnectError } from "../src/client/ws-transport.js";
import type { Transport } from "../src/rpc/transport.js";
import { Scavenger } from "../src/server/scavenger.js";
import { PreAuthGate, wsTransport } from "../src/server/transports.js";
import { startTestServer, type TestServer, tempDir } from "./helpers/server.js";

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
    // What a person holding a revoked or expired token reads: why the server may not know it, and that it was kept.
    expect((error as Error).message).toMatch(/does not know this token \(HTTP 401: revoked, expired, or never made by this server\); the token was not sent/);
  });
});

/** Writes `request` on a new connection to the Unix socket at `path` and resolves with the HTTP head answered. */
function rawExchange(path: string, requests: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    const heads: string[] = [];
    let buffered = "";
    socket.on("data", (d) => {
      buffered += d.toString("latin1");
      for (let end = buffered.indexOf("\r\n\r\n"); end >= 0; end = buffered.indexOf("\r\n\r\n")) {
        heads.push(buffered.slice(0, end));
        buffered = buffered.slice(end + 4);
        const next = requests[heads.length];
        if (next === undefined) {
          socket.destroy();
          resolve(heads);
          return;
        }
        socket.write(next);
      }
    });
    socket.once("error", reject);
    socket.once("close", () => resolve(heads));
    socket.once("connect", () => socket.write(requests[0]!));
  });
}

const upgradeWith = (authorization: string) =>
  `GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.alloc(16, 1).toString("base64")}\r\nAuthorization: ${authorization}\r\n\r\n`;
const proofRequest = (id: string, nonce: string) => `GET ${PROOF_PATH} HTTP/1.1\r\nHost: localhost\r\nSpool-Credential: ${id}\r\nSpool-Nonce: ${nonce}\r\n\r\n`;
const headerOf = (head: string, name: string) => new RegExp(`^${name}: (.*)$`, "im").exec(head)?.[1]?.trim() ?? "";

describe("transports: on the Unix socket the client proves it holds its credential and never sends it (issue 54)", () => {
  let ts: TestServer;
  let path: string;
  beforeAll(async () => {
    ts = await startTestServer();
    path = ts.server.config.socketPath;
  });
  afterAll(() => ts.stop());

  it("what a client sends answers one challenge: replayed on another connection it is refused, and so is a token's name with no proof", async () => {
    const nonce = randomBytes(32).toString("hex");
    const id = credentialId(ts.server.token);
    // A client that holds the token: the server proves itself, gives a challenge, and the answer opens the connection.
    const [proofHead] = await rawExchange(path, [proofRequest(id, nonce)]);
    expect(proofHead).toMatch(/^HTTP\/1\.1 204/);
    expect(headerOf(proofHead!, "Spool-Proof")).toBe(serverProof(tokenVerifier(ts.server.token), nonce, unixEndpoint(path)));
    const seen: string[] = [];
    const heads = await new Promise<string[]>((resolve, reject) => {
      const socket = connect({ path });
      let buffered = "";
      socket.on("data", (d) => {
        buffered += d.toString("latin1");
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        seen.push(head);
        if (seen.length === 1) {
          const answer = `Spool-Proof ${clientProof(tokenVerifier(ts.server.token), headerOf(head, "Spool-Challenge"), nonce, unixEndpoint(path))}`;
          seen.push(answer);
          socket.write(upgradeWith(answer));
        } else {
          socket.destroy();
          resolve(seen);
        }
      });
      socket.once("error", reject);
      socket.once("connect", () => socket.write(proofRequest(id, nonce)));
    });
    expect(heads[2]).toMatch(/^HTTP\/1\.1 101/);
    // Everything that client sent, replayed byte for byte on a new connection: a new challenge, and the old answer is 401.
    const replayed = await rawExchange(path, [proofRequest(id, nonce), upgradeWith(heads[1]!)]);
    expect(replayed[0]).toMatch(/^HTTP\/1\.1 204/);
    expect(headerOf(replayed[0]!, "Spool-Challenge")).not.toBe(headerOf(heads[0]!, "Spool-Challenge"));
    expect(replayed[1]).toMatch(/^HTTP\/1\.1 401/);
    // Only the token's name (its id): no answer, a made-up one, or the answer with no challenge asked for are 401.
    for (const answer of ["Spool-Proof ", `Spool-Proof ${"0".repeat(64)}`, `Bearer ${id}`]) {
      const [, upgrade] = await rawExchange(path, [proofRequest(id, randomBytes(32).toString("hex")), upgradeWith(answer)]);
      expect(upgrade).toMatch(/^HTTP\/1\.1 401/);
    }
    const [unasked] = await rawExchange(path, [upgradeWith(heads[1]!)]);
    expect(unasked).toMatch(/^HTTP\/1\.1 401/);
  });

  it("a socket that relays to the server from another path gets a proof bound to the server's, and the client sends no token and no proof to it", async () => {
    const relayPath = join(tempDir("spool-relay-"), "relay.sock");
    let relayed = "";
    const relay = createServer((inbound) => {
      const outbound = connect({ path });
      inbound.on("data", (d) => {
        relayed += d.toString("latin1");
        outbound.write(d);
      });
      outbound.pipe(inbound);
      inbound.on("close", () => outbound.destroy());
      outbound.on("error", () => inbound.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(relayPath, resolve));
    const error = await SpoolClient.connect(`ws+unix://${relayPath}:/`, { token: ts.server.token }).catch((e: unknown) => e);
    relay.close();
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/a wrong proof: .*the token was not sent/);
    expect(relayed).toContain(PROOF_PATH);
    expect(relayed).not.toContain(ts.server.token);
    expect(relayed).not.toMatch(/authorization/i);
  });

  it("the spool client over the socket: the home's token and a principal's credential work, a revoked one is 401 before anything is proved", async () => {
    const admin = await SpoolClient.connect(ts.server.localUrl!, { token: ts.server.token });
    const { token } = await admin.call("token/create", { name: "unix-viewer", role: "viewer" });
    const viewer = await SpoolClient.connect(ts.server.localUrl!, { token });
    expect(await viewer.call("ping", {})).toMatchObject({ pong: true });
    viewer.close();
    await admin.call("token/revoke", { name: "unix-viewer" });
    admin.close();
    const error = await SpoolClient.connect(ts.server.localUrl!, { token }).catch((e: unknown) => e);
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

  it("a kept-alive connection whose requests carry a good credential or a paired device's session is authenticated: the deadline does not cut it", async () => {
    const quick = await startTestServer({ limits: { authDeadlineMs: 300 } });
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const { port, token } = quick.server;
      const origin = `http://127.0.0.1:${port}`;
      /** One request through the agent's one socket: its status, body, cookie, and whether it went on a socket used before. */
      const ask = (path: string, method: string, headers: Record<string, string>, body?: string) =>
        new Promise<{ status: number; text: string; cookie: string; reused: boolean; socket: Socket }>((resolve, reject) => {
          const request = httpRequest(`${origin}${path}`, { method, headers, agent }, (response) => {
            let text = "";
            response.on("data", (d: Buffer) => (text += d.toString()));
            response.on("end", () =>
              resolve({
                status: response.statusCode!,
                text,
                cookie: /^([^=]+=[^;]+)/.exec(response.headers["set-cookie"]?.[0] ?? "")?.[1] ?? "",
                reused: request.reusedSocket,
                socket: request.socket as Socket,
              }),
            );
          });
          request.once("error", reject);
          request.end(body);
        });
      /** Resolves when a connection opened now, that never authenticates, is closed at its deadline: every older one's has passed. */
      const deadlinePassed = async () => {
        const control = await opened(port);
        idle.push(control);
        await new Promise((resolve) => control.once("close", resolve));
      };
      const mint = () => ask("/session/code", "POST", { Authorization: `Bearer ${token}` });
      // By the credential (spool open's way): the connection that minted a code mints the next one past the deadline.
      const first = await mint();
      expect(first.status).toBe(201);
      let cut = false;
      first.socket.once("close", () => (cut = true));
      await deadlinePassed();
      const second = await mint();
      expect([second.status, second.reused, cut]).toEqual([201, true, false]);
      // By the paired device's session (the page's way): a new connection redeems the code, then asks GET /session past the deadline.
      second.socket.destroy();
      const { code } = JSON.parse(second.text) as { code: string };
      const signed = await ask("/session", "POST", { Origin: origin, "Content-Type": "application/json" }, JSON.stringify({ code }));
      expect([signed.status, signed.reused]).toEqual([200, false]);
      const { key } = JSON.parse(signed.text) as { key: string };
      let pageCut = false;
      signed.socket.once("close", () => (pageCut = true));
      await deadlinePassed();
      const device = await ask("/session", "GET", { Cookie: signed.cookie, "Spool-Session-Key": key });
      expect([device.status, device.reused, pageCut]).toEqual([200, true, false]);
      // What proves nobody leaves the connection counted, and cut at its deadline: a wrong credential, the spent code
      // again, a session cookie without its key.
      for (const [path, method, headers, body, status] of [
        ["/session/code", "POST", { Authorization: "Bearer spool_wrong" }, undefined, 401],
        ["/session", "POST", { Origin: origin, "Content-Type": "application/json" }, JSON.stringify({ code }), 401],
        ["/session", "GET", { Cookie: signed.cookie }, undefined, 401],
      ] as const) {
        device.socket.destroy();
        const refused = await ask(path, method, headers, body);
        expect([refused.status, refused.reused]).toEqual([status, false]);
        const closed = new Promise((resolve) => refused.socket.once("close", resolve));
        await deadlinePassed();
        await closed;
      }
    } finally {
      agent.destroy();
      await quick.stop();
    }
  });

  it("a request read whole and still being answered at the deadline gets its answer, then its connection closes", async () => {
    // The deadline must come after the request was read whole and before the answer: a machine so busy that the
    // deadline passed first (the connection then closes unanswered, as it should) tries again with a longer one.
    for (let deadlineMs = 200; ; deadlineMs *= 2) {
      expect(deadlineMs, "the request was never read whole within its deadline").toBeLessThan(60_000);
      const gate = new PreAuthGate({ total: 8, perAddress: 4, deadlineMs, graceMs: 0 }, { warn: () => undefined } as never);
      let admitted = 0;
      let read = Number.POSITIVE_INFINITY;
      // The answer comes after the deadline: a sign-in whose store work outlasts it, say.
      const server = createHttpServer((request, response) => {
        gate.answering(request, response);
        request.resume().once("end", () => (read = performance.now()));
        setTimeout(() => response.end("answered"), 2 * deadlineMs);
      });
      server.on("connection", (socket: Socket) => {
        admitted = performance.now();
        gate.admit(socket);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        // A raw connection (keep-alive, HTTP/1.1's default): only the gate closes it, and its end is seen at once.
        const socket = connect((server.address() as { port: number }).port, "127.0.0.1");
        let text = "";
        socket.on("data", (data) => (text += data.toString()));
        socket.on("error", () => undefined);
        socket.write("POST / HTTP/1.1\r\nHost: spool\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
        await new Promise((resolve) => socket.once("close", resolve));
        if (read - admitted >= deadlineMs) continue;
        expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n(8\r\nanswered\r\n0\r\n\r\n|answered)$/);
        return;
      } finally {
        server.closeAllConnections();
        server.close();
      }
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

describe("transports: a stopping server's closing handshake", () => {
  /** A raw WebSocket on the home's Unix socket whose own socket the test can pause; resolves once the server answered it. */
  async function rawClient(ts: TestServer): Promise<{ ws: WebSocket; raw: Socket; closed: Promise<[number, string]> }> {
    let raw: Socket | undefined;
    const ws = new WebSocket(ts.server.localUrl!, {
      headers: { Authorization: `Bearer ${ts.server.token}` },
      createConnection: () => (raw = connect({ path: ts.server.config.socketPath })),
    });
    const closed = new Promise<[number, string]>((resolve) => ws.once("close", (code, reason) => resolve([code, reason.toString()])));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const answered = new Promise((resolve) => ws.once("message", resolve));
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: {} }));
    await answered;
    return { ws, raw: raw!, closed };
  }

  it("a client that writes before it reads the server's close still reads 1001: the server waits for the handshake, it does not drop the socket at once", async () => {
    const ts = await startTestServer();
    const slow = await rawClient(ts);
    const other = await rawClient(ts);
    // The slow client reads nothing for now: the close frame waits in its socket.
    slow.raw.pause();
    const stopped = ts.stop();
    // The other client has its close: the server has sent every client's.
    expect((await other.closed)[0]).toBe(1001);
    // A request written then (as \`spool act\` does when it starts to follow a command) must not break the connection.
    // Its write has finished (or failed) before it reads on.
    await new Promise((resolve) => slow.ws.send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping", params: {} }), resolve));
    slow.raw.resume();
    expect(await slow.closed).toEqual([1001, "server shutting down"]);
    await stopped;
  });
});
