import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { SpoolClient } from "../../src/client/spool-client.js";
import { connectWebSocket } from "../../src/client/ws-transport.js";
import { createLogger } from "../../src/logger.js";
import { METHODS } from "../../src/protocol/methods/index.js";
import { ROLES, type Role, roleAllows } from "../../src/protocol/roles.js";
import { ENTRY } from "../../src/protocol/status.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { credentialClients } from "../helpers/credential-clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Rows of every table a refused call could have written, counted. */
async function snapshot(ts: TestServer): Promise<Record<string, number>> {
  const db = ts.server.store.db;
  const out: Record<string, number> = {};
  for (const table of ["projects", "runs", "entries", "chunks", "loops", "principals", "allow_rules"] as const) {
    const row = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    out[table] = Number(row.n);
  }
  return out;
}

describe("principals: roles, scopes, hashed credentials, revocation", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  const tokens = {} as Record<Role, string>;
  /** WebSocket clients holding a credential, initialized into a project unless null; closed at the end. */
  const { as, connected, closeAll } = credentialClients(() => ts.server.url);

  beforeAll(async () => {
    ts = await startTestServer();
    admin = await ts.clientIn("alpha");
    await (await ts.clientIn("beta")).call("ping", {});
    for (const role of ROLES) tokens[role] = (await admin.call("token/create", { name: `the-${role}`, role })).token;
  });
  afterAll(async () => {
    closeAll();
    await ts.stop();
  });

  it("every method of the protocol declares a role", () => {
    for (const method of METHODS) expect(ROLES, `${method.name} declares no role`).toContain(method.role);
  });

  // The table: every method × every role, generated from the descriptors, so a method added later is in it.
  it("refuses each method to every role below the one it declares, with FORBIDDEN naming that role, and changes nothing", async () => {
    const clients = Object.fromEntries(await Promise.all(ROLES.map(async (r) => [r, await as(tokens[r])] as const))) as Record<Role, SpoolClient>;
    const before = await snapshot(ts);
    const refused: string[] = [];
    for (const method of METHODS) {
      for (const role of ROLES) {
        if (roleAllows(role, method.role)) continue;
        // The role named is the least that may do what was asked (run/resolve with no decision: accepting, a person's).
        await expect(clients[role].call(method.name, {}), `${method.name} as ${role}`).rejects.toMatchObject({
          data: { code: "FORBIDDEN", role: method.refusalRole?.({}) ?? method.role, held: role },
        });
        refused.push(`${method.name}:${role}`);
      }
    }
    expect(await snapshot(ts)).toEqual(before);
    // The table is not empty, and it covers every group of methods.
    const groups = new Set(refused.map((r) => r.split(/[/:]/)[0]));
    for (const group of ["run", "proposal", "entry", "runner", "stream", "token", "project", "model"]) expect(groups).toContain(group);
    // Every role at or above the declared one gets past the role check (to the params' check, or the call itself).
    for (const method of METHODS) {
      for (const role of ROLES) {
        if (!roleAllows(role, method.role)) continue;
        const outcome = await clients[role].call(method.name, {}).then(
          () => "ok",
          (error: { data?: { code?: string } }) => error.data?.code,
        );
        expect(outcome, `${method.name} as ${role}`).not.toBe("FORBIDDEN");
      }
    }
  });

  it("keeps no token in plain text: the database file holds neither the token nor its secret", async () => {
    const { token } = await admin.call("token/create", { name: "bytes-check", role: "viewer" });
    const secret = token.split("_").slice(2).join("_");
    if (ts.server.store.kind !== "sqlite") return;
    const dbFile = ts.server.config.dbFile;
    const bytes = Buffer.concat([readFileSync(dbFile), ...[`${dbFile}-wal`].map((f) => readFileSync(f, { flag: "a+" }))]);
    expect(bytes.includes(Buffer.from(token))).toBe(false);
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
    // The principal is there (its name), and its token still works.
    expect(bytes.includes(Buffer.from("bytes-check"))).toBe(true);
    expect(await (await as(token)).call("ping", {})).toMatchObject({ pong: true });
  });

  it("a copied runner credential can attach but neither propose nor decide (real WebSocket, real server)", async () => {
    await admin.call("run/create", { alias: "victim" });
    const { path } = await admin.call("proposal/create", { run: "victim", tool: "sh", command: "echo pending" });
    const runner = await as(tokens.runner);
    const heard: string[] = [];
    runner.on("run/proposal", (p: { path: string }) => heard.push(p.path));
    await expect(runner.call("runner/attach", { name: "copied", backend: "local" })).resolves.toMatchObject({ name: "copied" });
    // It hears nothing it could read the project by: a proposal made now reaches it neither re-sent nor live
    // (a notification sent to it would arrive before the answer to its next call).
    await admin.call("proposal/create", { run: "victim", tool: "sh", command: "echo second" });
    await runner.call("ping", {});
    expect(heard).toEqual([]);
    await expect(runner.call("proposal/create", { run: "victim", tool: "sh", command: "cat ~/.ssh/id_rsa", sandbox: "full" })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", role: "agent" },
    });
    await expect(runner.call("run/resolve", { run: "victim", path, decision: "accept", runner: "self" })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", role: "person" },
    });
    await expect(runner.call("run/create", { alias: "mine" })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    expect((await admin.call("entry/get", { run: "victim", path })).status).toBe(ENTRY.proposed);
    const { entries } = await admin.call("entry/list", { run: "victim", pattern: "log://*" });
    expect(entries).toHaveLength(2);
  });

  it("a runner's credential is enough to run what is dispatched to it, end to end", async () => {
    const runner = new RunnerClient({
      connect: () => SpoolClient.connect(ts.server.url, { token: tokens.runner }),
      project: "alpha",
      name: "ci",
      backend: new LocalBackend(),
      log: createLogger("silent"),
    });
    await runner.start();
    try {
      await admin.call("run/create", { alias: "dispatched" });
      const { path } = await admin.call("proposal/create", { run: "dispatched", tool: "sh", command: "echo ran on ci", runner: "ci" });
      const finished = admin.next("stream/finished", (p: { path: string }) => p.path === path, 20_000);
      await admin.call("run/resolve", { run: "dispatched", path, decision: "accept" });
      await finished;
      const log = await admin.call("entry/get", { run: "dispatched", path });
      expect(log.attributes).toMatchObject({ runner: "ci", exit_code: 0 });
      const out = await admin.call("entry/get", { run: "dispatched", path: log.producer!.channels[0]!.path });
      expect(out.body).toBe("ran on ci\n");
    } finally {
      await runner.stop();
    }
  });

  it("an agent proposes and cancels in its own runs, never accepts, and cannot touch a person's run", async () => {
    const agent = await as(tokens.agent);
    await agent.call("run/create", { alias: "agents-own" });
    const { path } = await agent.call("proposal/create", { run: "agents-own", tool: "sh", command: "echo hi" });
    await expect(agent.call("run/resolve", { run: "agents-own", path, decision: "accept" })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", role: "person" },
    });
    expect((await agent.call("entry/get", { run: "agents-own", path })).status).toBe(ENTRY.proposed);
    // Withdrawing its own proposal is not a decision to run anything.
    await expect(agent.call("run/resolve", { run: "agents-own", path, decision: "reject", reason: "changed my mind" })).resolves.toMatchObject({
      status: ENTRY.rejected,
    });
    await admin.call("run/create", { alias: "persons" });
    await expect(agent.call("proposal/create", { run: "persons", tool: "sh", command: "echo in" })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", role: "person", run: "persons" },
    });
    await expect(agent.call("run/prompt", { run: "persons", prompt: "hi" })).rejects.toMatchObject({ data: { code: "FORBIDDEN", role: "person" } });
    const { path: adminsPath } = await admin.call("proposal/create", { run: "persons", tool: "sh", command: "echo x" });
    await expect(agent.call("stream/cancel", { run: "persons", path: adminsPath })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    expect((await admin.call("entry/get", { run: "persons", path: adminsPath })).status).toBe(ENTRY.proposed);
  });

  it("records the principal's name as who proposed, decided and cancelled", async () => {
    const { token } = await admin.call("token/create", { name: "alice", role: "person" });
    const alice = await as(token);
    await alice.call("run/create", { alias: "alices" });
    const { path } = await alice.call("proposal/create", { run: "alices", tool: "sh", command: "sleep 30" });
    const accepted = await alice.call("run/resolve", { run: "alices", path, decision: "accept" });
    expect(accepted.status).toBe(ENTRY.done);
    await alice.call("stream/cancel", { run: "alices", path, reason: "enough" });
    const log = await admin.call("entry/get", { run: "alices", path });
    expect(log.attributes).toMatchObject({ proposedBy: "alice via test-client", resolvedBy: "alice via test-client", cancelledBy: "alice via test-client" });
    // The home's token file is the principal admin: its decisions and cancellations name it too.
    const { path: mine } = await admin.call("proposal/create", { run: "alices", tool: "sh", command: "sleep 30" });
    await admin.call("run/resolve", { run: "alices", path: mine, decision: "accept" });
    await admin.call("stream/cancel", { run: "alices", path: mine, reason: "enough" });
    expect((await admin.call("entry/get", { run: "alices", path: mine })).attributes).toMatchObject({
      proposedBy: expect.stringMatching(/^admin via connection [0-9a-f]+$/),
      resolvedBy: expect.stringMatching(/^admin via connection [0-9a-f]+$/),
      cancelledBy: expect.stringMatching(/^admin via connection [0-9a-f]+$/),
    });
  });

  it("a scoped credential joins only its projects, and project/list shows only them", async () => {
    const { token } = await admin.call("token/create", { name: "beta-only", role: "person", projects: ["beta"] });
    const scoped = await as(token, null);
    expect((await scoped.call("project/list", {})).projects.map((p) => p.name)).toEqual(["beta"]);
    await expect(scoped.initialize("alpha")).rejects.toMatchObject({ data: { code: "FORBIDDEN", project: "alpha" } });
    await expect(scoped.initialize("gamma")).rejects.toMatchObject({ data: { code: "FORBIDDEN", project: "gamma" } });
    // Found by root alone, a project outside the scope is refused too, and none is created.
    await expect(scoped.initialize(undefined, { root: "/tmp" })).rejects.toMatchObject({ data: { code: expect.stringMatching(/FORBIDDEN|NOT_FOUND/) } });
    expect((await admin.call("project/list", {})).projects.map((p) => p.name).sort()).toEqual(["alpha", "beta"]);
    await expect(scoped.initialize("beta")).resolves.toMatchObject({ project: { name: "beta" }, principal: { name: "beta-only", role: "person" } });
  });

  it("a connection may ask initialize for less than its credential holds, never more", async () => {
    const narrowed = await SpoolClient.connect(ts.server.url, { token: ts.server.token });
    connected.push(narrowed);
    await expect(narrowed.initialize("alpha", { role: "agent" })).resolves.toMatchObject({ principal: { name: "admin", role: "agent" } });
    await expect(narrowed.call("token/list", {})).rejects.toMatchObject({ data: { code: "FORBIDDEN", role: "admin", held: "agent" } });
    const viewer = await as(tokens.viewer, null);
    await expect(viewer.initialize("alpha", { role: "person" })).rejects.toMatchObject({ data: { code: "FORBIDDEN", role: "person" } });
  });

  it("closes a revoked principal's open connection, and its token stops working", async () => {
    const { token } = await admin.call("token/create", { name: "to-revoke", role: "viewer" });
    const doomed = await as(token);
    const closed = new Promise<number>((resolve) => doomed.onClose((code) => resolve(code)));
    const revokedAt = Date.now();
    await expect(admin.call("token/revoke", { name: "to-revoke" })).resolves.toMatchObject({ closed: 1, principal: { name: "to-revoke" } });
    expect(await closed).toBe(1008);
    // At once (well under a second here); the bound leaves a busy machine room.
    expect(Date.now() - revokedAt).toBeLessThan(10_000);
    await expect(connectWebSocket(ts.server.url, { token })).rejects.toMatchObject({ status: 401 });
    expect((await admin.call("token/list", {})).principals.map((p) => p.name)).not.toContain("to-revoke");
    expect((await admin.call("token/list", { revoked: true })).principals.find((p) => p.name === "to-revoke")?.revokedAt).toBeGreaterThan(0);
    await expect(admin.call("token/revoke", { name: "to-revoke" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });

  it("closes a connection when its credential expires, and refuses the token at the upgrade after", async () => {
    // Long enough to connect on a loaded machine; the test then waits for the close, not for a time.
    const soon = Date.now() + 3000;
    const { token } = await admin.call("token/create", { name: "short-lived", role: "viewer", expiresAt: soon });
    const live = await as(token);
    const closed = new Promise<number>((resolve) => live.onClose((code) => resolve(code)));
    expect(await closed).toBe(1008);
    await expect(connectWebSocket(ts.server.url, { token })).rejects.toMatchObject({ status: 401 });
  });

  it("the web page's sign-in makes a session for the principal whose credential minted the code", async () => {
    const base = ts.server.url.replace(/^ws:/, "http:");
    const origin = base.replace(/\/$/, "");
    const minted = await fetch(`${base}session/code`, { method: "POST", headers: { Authorization: `Bearer ${tokens.viewer}` } });
    expect(minted.status).toBe(201);
    const { code } = (await minted.json()) as { code: string };
    const signedIn = await fetch(`${base}session`, {
      method: "POST",
      headers: { Origin: origin, "Content-Type": "application/json" },
      body: JSON.stringify({ code }),
    });
    expect(signedIn.status).toBe(200);
    const cookie = signedIn.headers.get("set-cookie")!.split(";")[0]!;
    const { key } = (await signedIn.json()) as { key: string };
    const socket = new WebSocket(ts.server.url, ["spool", `spool.session.${key}`], { headers: { Cookie: cookie, Origin: origin } });
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    let id = 0;
    const rpc = (method: string, params: unknown) =>
      new Promise<{ result?: Record<string, unknown>; error?: { data?: Record<string, unknown> } }>((resolve) => {
        socket.once("message", (data) => resolve(JSON.parse(data.toString())));
        socket.send(JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }));
      });
    const joined = await rpc("initialize", { project: "alpha", protocolVersion: "1.0" });
    expect(joined.result?.principal).toEqual({ name: "the-viewer", role: "viewer", projects: null });
    expect((await rpc("run/create", {})).error?.data).toMatchObject({ code: "FORBIDDEN", role: "agent", held: "viewer" });
    // A wrong credential mints nothing.
    expect((await fetch(`${base}session/code`, { method: "POST", headers: { Authorization: "Bearer spool_0000000000000000_x" } })).status).toBe(401);
    socket.close();
  });

  it("token/create refuses a taken name, the home's name, a past expiry and a malformed role, and changes nothing", async () => {
    const before = await snapshot(ts);
    await expect(admin.call("token/create", { name: "the-viewer", role: "viewer" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    await expect(admin.call("token/create", { name: "admin", role: "viewer" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    await expect(admin.call("token/create", { name: "late", role: "viewer", expiresAt: 1000 })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await expect(admin.request("token/create", { name: "x", role: "root" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await expect(admin.call("token/create", { name: "bad name!", role: "viewer" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    expect(await snapshot(ts)).toEqual(before);
  });
});
