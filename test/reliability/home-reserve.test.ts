import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { type Socket, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ConnectError, unixSocketUrl } from "../../src/client/ws-transport.js";
import { mintCode, pair, redeem, sessionOf } from "../helpers/devices.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/*
 * Shares the home always keeps, over a real `spool serve`: the credentials a scoped admin mints count against its own
 * bounds (connections, devices, waiting proposals), and with every server-wide bound filled by them the home's token
 * still connects (TCP and its Unix socket), pairs a device and revokes; the devices of revoked credentials stop
 * counting at once and after a restart. And with per-principal bounds as wide as the server's, one scoped admin's
 * credentials fill every server-wide bound (connections, paired devices, sign-in codes, requests under way at /mcp
 * and /acp) and the home still connects, pairs and revokes, after which the others get in again.
 */

const LIMITS = {
  maxConnections: 10,
  maxConnectionsPerPrincipal: 6,
  maxDevices: 4,
  maxDevicesPerPrincipal: 4,
  maxPendingPerPrincipal: 4,
  homeReserve: 4,
};

/**
 * Clients of a test's server, each closed by `closeAll`: `connect` opens one; `status` is what an upgrade with the
 * token is answered (101: it connected, and that connection is kept open until `closeAll`).
 */
function clientsOf(serverUrl: () => string) {
  const clients: SpoolClient[] = [];
  const connect = async (token: string, url = serverUrl()): Promise<SpoolClient> => {
    const c = await SpoolClient.connect(url, { token });
    clients.push(c);
    return c;
  };
  const status = async (token: string): Promise<number | undefined> => {
    const attempt = await connect(token).catch((error: unknown) => error);
    if (attempt instanceof SpoolClient) return 101;
    if (!(attempt instanceof ConnectError)) throw attempt;
    return attempt.status;
  };
  const closeAll = () => {
    for (const c of clients) if (!c.closed) c.close();
  };
  return { connect, status, closeAll };
}

describe("a scoped admin's credentials share its bounds; the home keeps its reserve", () => {
  let home: string;
  let root: string;
  let port: number;
  let serve: ServeProcess;
  let homeToken: string;
  const { connect, status, closeAll } = clientsOf(() => serve.url);

  const start = async () => {
    serve = await spawnServe(["--port", String(port), "--home", home, "--no-local-runner"]);
  };

  beforeAll(async () => {
    home = tempDir("spool-home-reserve-");
    root = join(tempDir("spool-home-reserve-root-"), "alpha");
    mkdirSync(join(root, ".git"), { recursive: true });
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, "config.json"), JSON.stringify({ limits: LIMITS }));
    port = await freePort();
    await start();
    homeToken = readFileSync(join(home, "token"), "utf8").trim();
  }, 90_000);
  afterAll(async () => {
    closeAll();
    await serve?.stop();
  });

  it("minted credentials count against their minter; every bound filled by them, the home connects, pairs and revokes", async () => {
    const admin = await connect(homeToken);
    await admin.initialize(undefined, { root });
    const { token: opsToken } = await admin.call("token/create", { name: "ops", role: "admin", projects: ["alpha"] });
    const { token: carol } = await admin.call("token/create", { name: "carol", role: "person" });
    const ops = await connect(opsToken);
    await ops.initialize("alpha");
    // Eight agents minted by the scoped admin: one principal's bounds between them all.
    const agents: string[] = [];
    for (let i = 1; i <= 8; i++) agents.push((await ops.call("token/create", { name: `bot-${i}`, role: "agent", projects: ["alpha"] })).token);

    // Connections: ops and its agents hold six between them (maxConnectionsPerPrincipal), whichever credential asks.
    const bots: SpoolClient[] = [];
    for (const token of agents.slice(0, 5)) bots.push(await connect(token));
    expect(await status(agents[5]!)).toBe(429);
    expect(await status(agents[7]!)).toBe(429);

    // Waiting proposals: four between them (maxPendingPerPrincipal), the fifth refused whichever agent makes it.
    for (const [i, bot] of bots.entries()) {
      await bot.initialize("alpha");
      await bot.call("run/create", { alias: `r${i}` });
      const proposing = bot.call("proposal/create", { run: `r${i}`, tool: "sh", command: `echo waiting ${i}` });
      if (i < 4) await proposing;
      else await expect(proposing).rejects.toMatchObject({ data: { code: "LIMIT_EXCEEDED", limit: "maxPendingPerPrincipal" } });
    }

    // Devices: the agents pair four (maxDevicesPerPrincipal and maxDevices both); a fifth of theirs unpairs their oldest, nobody else's.
    const devices = [];
    for (const token of agents.slice(0, 5)) devices.push(await pair(port, token));
    expect((await sessionOf(devices[0]!)).status).toBe(401);
    expect((await sessionOf(devices[4]!)).status).toBe(200);

    // A person the home made fills the server's connections (ten in all with the home's) and finds the devices full.
    for (let i = 0; i < 3; i++) await connect(carol);
    expect(await status(carol)).toBe(503);
    const carolCode = (await (await mintCode(port, carol)).json()) as { code: string };
    expect((await redeem(port, carolCode.code)).status).toBe(429);

    // Every server-wide bound is full: the home still connects (TCP and its Unix socket), pairs and revokes.
    const overTcp = await connect(homeToken);
    expect((await overTcp.call("ping", {})).pong).toBe(true);
    const overSocket = await connect(homeToken, unixSocketUrl(join(home, "spool.sock")));
    expect((await overSocket.call("ping", {})).pong).toBe(true);
    const operator = await pair(port, homeToken, { name: "operator" });
    expect((await sessionOf(operator)).status).toBe(200);
    for (let i = 1; i <= 8; i++) await overSocket.call("token/revoke", { name: `bot-${i}` });
    await overSocket.call("token/revoke", { name: "ops" });

    // The revoked agents' devices stop counting at once: carol pairs now.
    expect((await sessionOf(devices[4]!)).status).toBe(401);
    const carolDevice = await pair(port, carol, { name: "carol's phone" });
    expect((await sessionOf(carolDevice)).status).toBe(200);
  }, 120_000);

  it("after a restart the revoked credentials' devices still do not count", async () => {
    closeAll();
    await serve.stop();
    await start();
    const admin = await connect(homeToken);
    const { token: dave } = await admin.call("token/create", { name: "dave", role: "person" });
    // Two devices live (the operator's and carol's): dave pairs two more, up to maxDevices.
    const first = await pair(port, dave);
    const second = await pair(port, dave);
    for (const device of [first, second]) expect((await sessionOf(device)).status).toBe(200);
    const full = (await (await mintCode(port, dave)).json()) as { code: string };
    expect((await redeem(port, full.code)).status).toBe(429);
  }, 120_000);
});

describe("one scoped admin's credentials fill every server-wide bound; the home still connects, pairs and revokes", () => {
  const WIDE = {
    maxConnections: 8,
    maxConnectionsPerPrincipal: 8,
    maxDevices: 3,
    maxDevicesPerPrincipal: 3,
    maxCodes: 4,
    maxCodesPerPrincipal: 4,
    maxHttpRequests: 4,
    maxHttpRequestsPerPrincipal: 4,
    bodyDeadlineMs: 120_000,
    homeReserve: 4,
  };
  let home: string;
  let port: number;
  let serve: ServeProcess;
  let homeToken: string;
  const { connect, status, closeAll } = clientsOf(() => serve.url);
  const sockets: Socket[] = [];
  const answered: string[] = [];

  beforeAll(async () => {
    home = tempDir("spool-home-wide-");
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, "config.json"), JSON.stringify({ limits: WIDE }));
    port = await freePort();
    serve = await spawnServe(["--port", String(port), "--home", home, "--no-local-runner"]);
    homeToken = readFileSync(join(home, "token"), "utf8").trim();
  }, 90_000);
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    closeAll();
    await serve?.stop();
  });

  /** A request at /mcp or /acp held under way: its head sent, its body never whole (until the body's deadline, two minutes here). */
  const heldPost = (path: string, token: string, refused?: () => void): Promise<void> =>
    new Promise((resolve, reject) => {
      const socket = tcpConnect({ host: "127.0.0.1", port });
      sockets.push(socket);
      socket.on("error", () => undefined);
      // What the server answered a held request, if anything (it should answer nothing until the body's deadline).
      socket.once("data", (data: Buffer) => {
        answered.push(`${path}: ${data.toString().split("\r\n")[0]}`);
        refused?.();
      });
      socket.once("connect", () => {
        socket.write(
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{`,
          (error) => (error ? reject(error) : resolve()),
        );
      });
    });
  /** A 2026-07-28 tools/list at /mcp: its HTTP status. */
  const toolsList = async (token: string): Promise<number> => {
    const response = await fetch(`http://127.0.0.1:${port}/mcp?project=alpha`, {
      // One answer that never comes (a pooled connection the server is done with) is a try that failed, not the test's wait.
      signal: AbortSignal.timeout(5_000),
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
        Authorization: `Bearer ${token}`,
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/list",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/list",
        params: {
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": { name: "wide", version: "1.0.0" },
          },
        },
      }),
    });
    await response.arrayBuffer();
    return response.status;
  };

  it("connections, devices, codes and the doors' requests all full of its share; the home gets in past each and revokes it", async () => {
    const root = join(tempDir("spool-home-wide-root-"), "alpha");
    mkdirSync(join(root, ".git"), { recursive: true });
    const admin = await connect(homeToken);
    await admin.initialize(undefined, { root });
    const { token: opsToken } = await admin.call("token/create", { name: "ops", role: "admin", projects: ["alpha"] });
    const { token: carol } = await admin.call("token/create", { name: "carol", role: "person" });
    const ops = await connect(opsToken);
    await ops.initialize("alpha");
    const agents: string[] = [];
    for (let i = 1; i <= 8; i++) agents.push((await ops.call("token/create", { name: `bot-${i}`, role: "agent", projects: ["alpha"] })).token);

    // Connections: the home's and ops's, then agents until the server's eight are open; the next is the server's 503.
    for (const token of agents.slice(0, 6)) await connect(token);
    expect(await status(agents[6]!)).toBe(503);
    expect(await status(carol)).toBe(503);
    // Devices: three, the server's all; carol's pairing is refused.
    for (const token of agents.slice(0, 3)) expect((await sessionOf(await pair(port, token))).status).toBe(200);
    const carolCode = (await (await mintCode(port, carol)).json()) as { code: string };
    expect((await redeem(port, carolCode.code)).status).toBe(429);
    // Sign-in codes: the share mints the server's four (past its own four, minting spends the share's oldest, never
    // another's); carol's is refused.
    for (const token of agents) expect((await mintCode(port, token)).status).toBe(201);
    expect((await mintCode(port, carol)).status).toBe(429);
    // Requests under way at /mcp and /acp: the server's four, held by the agents' bodies that never end.
    // A held request is sent when its head is written, not when the server has counted it: carol's probe may come in
    // between and take the last place, and the held one is refused (429). Such a one is sent again, the next try.
    const refusedHeld: [string, string][] = [];
    const hold = (path: string, token: string) => heldPost(path, token, () => refusedHeld.push([path, token]));
    for (const [i, token] of agents.slice(0, 4).entries()) await hold(i % 2 === 0 ? "/mcp?project=alpha" : "/acp", token);
    const seen = new Set<number | string>();
    await eventually(
      async () => {
        for (const [path, token] of refusedHeld.splice(0)) await hold(path, token);
        const got = await toolsList(carol).catch((error: unknown) => String(error));
        seen.add(got);
        return got === 429;
      },
      60_000,
      () =>
        `the doors' requests to be full (carol's tools/list got ${[...seen].join(", ")}; the held requests were answered: ${answered.join("; ") || "none"})`,
    );

    // The home gets in past every one: TCP and its Unix socket, /mcp, a paired device; then it revokes the share.
    expect((await (await connect(homeToken)).call("ping", {})).pong).toBe(true);
    const overSocket = await connect(homeToken, unixSocketUrl(join(home, "spool.sock")));
    expect((await overSocket.call("ping", {})).pong).toBe(true);
    expect(await toolsList(homeToken)).toBe(200);
    const operator = await pair(port, homeToken, { name: "operator" });
    expect((await sessionOf(operator)).status).toBe(200);
    for (let i = 1; i <= 8; i++) await overSocket.call("token/revoke", { name: `bot-${i}` });
    await overSocket.call("token/revoke", { name: "ops" });

    // The share's hold is let go: carol connects, is served at /mcp, mints a code and pairs.
    await eventually(async () => (await status(carol)) === 101, 20_000, "carol to connect");
    await eventually(async () => (await toolsList(carol)) === 200, 20_000, "carol to be served at /mcp");
    expect((await sessionOf(await pair(port, carol, { name: "carol's phone" }))).status).toBe(200);
  }, 180_000);
});
