import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { alive, freePort, processWith, type ServeProcess, spawnCli, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";
import { modern, modernRequest, openStream, resultText, TASKS, VERSION } from "./modern-harness.js";

/*
 * Issue 47: MCP 2026-07-28 at /mcp, beside the 2025-11-25 sessions (test/mcp/http.test.ts), over real HTTP to a
 * `spool serve` subprocess: server/discover and the revision's errors, approvals as multi round-trip requests,
 * the tasks extension across a restart, tasks/cancel. Issue 45 (7): sessions capped per principal, none for a
 * runner credential, and open streams closed when their credential is revoked.
 */

describe("MCP 2026-07-28 at /mcp", () => {
  let home: string;
  let project: string;
  let port: number;
  let server: ServeProcess;
  let admin: string;
  const tokens: Record<string, string> = {};
  const args = () => ["--port", String(port), "--home", home];
  const url = () => `http://127.0.0.1:${port}/mcp?root=${encodeURIComponent(project)}`;
  const cli = (argv: string[]) => spawnCli(argv, { SPOOL_SERVER: server.url, SPOOL_TOKEN_FILE: join(home, "token"), SPOOL_HOME: home }, { cwd: project });
  const elicits = { elicitation: { form: {} } };

  /** `spool pending`'s line for a command (by its slug), as run and path. */
  async function pendingRef(slug: string): Promise<{ run: string; path: string }> {
    let found: RegExpExecArray | null = null;
    await eventually(
      async () => {
        const pending = cli(["pending"]);
        await pending.exit;
        const line = pending
          .stdout()
          .split("\n")
          .find((l) => l.includes(slug));
        found = line ? /(\S+)\s+(log:\/\/\S+)/.exec(line) : null;
        return found !== null;
      },
      20_000,
      `${slug} to be pending`,
    );
    return { run: found![1]!, path: found![2]! };
  }

  async function principal(name: string, role: string, expiresAt?: number): Promise<string> {
    const client = await SpoolClient.connect(server.url, { token: admin });
    try {
      const { token } = await client.call("token/create", { name, role, ...(expiresAt ? { expiresAt } : {}) } as never);
      return token as string;
    } finally {
      client.close();
    }
  }

  beforeAll(async () => {
    home = tempDir("spool-mcp-modern-home-");
    project = join(tempDir("spool-mcp-modern-"), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
    port = await freePort();
    server = await spawnServe(args());
    admin = readFileSync(join(home, "token"), "utf8").trim();
    // Only an admin creates a project (SPEC §2b); the principals below join it.
    const creator = await SpoolClient.connect(server.url, { token: admin });
    await creator.initialize(undefined, { root: project });
    creator.close();
    for (const [name, role] of [
      ["alice", "person"],
      ["bob", "person"],
      ["robot", "agent"],
      ["ci-runner", "runner"],
    ] as const)
      tokens[name] = await principal(name, role);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("server/discover says the revision, the capabilities (tasks among them) and the server; the revision's errors come with their HTTP status", async () => {
    const found = await modern(url(), "server/discover", {}, { token: tokens.robot! });
    expect(found.status).toBe(200);
    const result = found.body.result!;
    expect(result.resultType).toBe("complete");
    expect(result.supportedVersions).toEqual([VERSION]);
    expect((result.capabilities as { extensions: Record<string, unknown> }).extensions).toHaveProperty(TASKS);
    expect((result._meta as Record<string, unknown>)["io.modelcontextprotocol/serverInfo"]).toMatchObject({ name: "spool" });
    expect(result).toMatchObject({ ttlMs: expect.any(Number), cacheScope: "public" });

    // Headers against the body: -32020, HTTP 400.
    const noVersionHeader = await modern(url(), "server/discover", {}, { token: tokens.robot!, headers: { "MCP-Protocol-Version": null } });
    expect([noVersionHeader.status, noVersionHeader.body.error?.code]).toEqual([400, -32020]);
    const otherMethod = await modern(url(), "tools/list", {}, { token: tokens.robot!, headers: { "Mcp-Method": "server/discover" } });
    expect([otherMethod.status, otherMethod.body.error?.code]).toEqual([400, -32020]);
    const otherName = await modern(
      url(),
      "tools/call",
      { name: "list_commands", arguments: {} },
      { token: tokens.robot!, headers: { "Mcp-Name": "run_command" } },
    );
    expect([otherName.status, otherName.body.error?.code]).toEqual([400, -32020]);
    // An encoded Mcp-Name is decoded before it is compared.
    const encoded = await modern(
      url(),
      "tools/call",
      { name: "list_commands", arguments: {} },
      { token: tokens.robot!, headers: { "Mcp-Name": `=?base64?${Buffer.from("list_commands").toString("base64")}?=` } },
    );
    expect(encoded.status).toBe(200);
    expect(encoded.body.result?.resultType).toBe("complete");
    // A revision it does not serve without a session: -32022, HTTP 400, with the ones it does.
    const future = await modern(url(), "server/discover", {}, { token: tokens.robot!, version: "2099-01-01" });
    expect([future.status, future.body.error?.code]).toEqual([400, -32022]);
    expect(future.body.error?.data).toEqual({ supported: [VERSION], requested: "2099-01-01" });
    // A method it does not have: 404, -32601 (ping and logging/setLevel are gone in this revision).
    const ping = await modern(url(), "ping", {}, { token: tokens.robot! });
    expect([ping.status, ping.body.error?.code]).toEqual([404, -32601]);
    // No GET stream in this revision.
    const get = await fetch(url(), { headers: { Authorization: `Bearer ${tokens.robot}`, Accept: "text/event-stream" } });
    expect(get.status).toBe(405);
    await get.body?.cancel();

    // tools/list: the fixed order, cacheable.
    const first = await modern(url(), "tools/list", {}, { token: tokens.robot! });
    const again = await modern(url(), "tools/list", {}, { token: tokens.robot!, client: "another" });
    const names = (first.body.result!.tools as { name: string }[]).map((t) => t.name);
    expect(names).toEqual(["run_command", "read_output", "send_input", "signal", "cancel", "list_commands"]);
    expect((again.body.result!.tools as { name: string }[]).map((t) => t.name)).toEqual(names);
    expect(first.body.result).toMatchObject({ resultType: "complete", ttlMs: expect.any(Number), cacheScope: "public" });
    // A tool Spool does not offer: the JSON-RPC error -32602, not a tool result.
    const unknown = await modern(url(), "tools/call", { name: "rm_everything", arguments: {} }, { token: tokens.robot! });
    expect(unknown.body.error?.code).toBe(-32602);
    expect(unknown.body.error?.message).toContain("Unknown tool: rm_everything");
    const resources = await modern(url(), "resources/list", {}, { token: tokens.robot! });
    expect(resources.body.result).toMatchObject({ resources: [], cacheScope: "private", ttlMs: 0 });
  }, 60_000);

  it("README's 2026-07-28 request (server/discover) with this server's port, project and token answers the revision", async () => {
    const readme = readFileSync(new URL("../../docs/mcp.md", import.meta.url), "utf8");
    const block = /```sh mcp-2026\n([\s\S]*?)```/.exec(readme)![1]!;
    const headers: Record<string, string> = { Authorization: `Bearer ${tokens.robot}` };
    for (const m of block.matchAll(/-H "([^:"]+): ([^"]*)"/g)) if (m[1] !== "Authorization") headers[m[1]!] = m[2]!;
    const body = /-d '([\s\S]*?)'/.exec(block)![1]!;
    const address = /curl -s "([^"]+)"/
      .exec(block)![1]!
      .replace("127.0.0.1:7420", `127.0.0.1:${port}`)
      .replace("project=myapp", `root=${encodeURIComponent(project)}`);
    const answer = await fetch(address, { method: "POST", headers, body });
    expect(answer.status).toBe(200);
    const { result } = (await answer.json()) as { result: { supportedVersions: string[]; capabilities: { extensions: object } } };
    expect(result.supportedVersions).toEqual([VERSION]);
    expect(result.capabilities.extensions).toHaveProperty(TASKS);
  });

  it("an approval as a multi round-trip request: input_required with the facts; a tampered, another principal's or a replayed state is refused and runs nothing; accept runs it once; decline rejects", async () => {
    const marker = join(project, "mrtr-ran");
    const command = `echo ran >> ${marker}; printf 'tab\\x1b[31mred'`;
    const call = { name: "run_command", arguments: { command } };
    const asked = await modern(url(), "tools/call", call, { token: tokens.alice!, capabilities: elicits, client: "alice-app" });
    expect(asked.status).toBe(200);
    const result = asked.body.result!;
    expect(result.resultType).toBe("input_required");
    const request = (result.inputRequests as Record<string, { method: string; params: { message: string; requestedSchema: unknown } }>).decision!;
    expect(request.method).toBe("elicitation/create");
    expect(request.params.message).toContain("run this command?");
    expect(request.params.message).toContain("mrtr-ran");
    // The facts every client shows, with control characters escaped.
    expect(request.params.message).not.toContain("\u001b");
    const state = result.requestState as string;
    expect(typeof state).toBe("string");
    const accept = { decision: { action: "accept", content: { decision: "accept" } } };

    // Tampered with: one character of its body changed.
    const i = state.indexOf(".") + 5;
    const tampered = state.slice(0, i) + (state[i] === "A" ? "B" : "A") + state.slice(i + 1);
    const bad = await modern(
      url(),
      "tools/call",
      { ...call, inputResponses: accept, requestState: tampered },
      { token: tokens.alice!, capabilities: elicits, client: "alice-app" },
    );
    expect(bad.body.error?.code).toBe(-32602);
    expect(bad.body.error?.message).toMatch(/failed verification/);
    // Presented by another person.
    const other = await modern(
      url(),
      "tools/call",
      { ...call, inputResponses: accept, requestState: state },
      { token: tokens.bob!, capabilities: elicits, client: "alice-app" },
    );
    expect(other.body.error?.message).toMatch(/another principal/);
    // On another request (other arguments).
    const moved = await modern(
      url(),
      "tools/call",
      { name: "run_command", arguments: { command: "echo other" }, inputResponses: accept, requestState: state },
      { token: tokens.alice!, capabilities: elicits, client: "alice-app" },
    );
    expect(moved.body.error?.message).toMatch(/another request/);
    // Answers that are not results (a string, a number where a result object goes): malformed, refused before the
    // state is redeemed, so it still serves the well-formed retry below.
    for (const inputResponses of ["accept", { decision: 5 }, { decision: null }]) {
      const malformed = await modern(
        url(),
        "tools/call",
        { ...call, inputResponses, requestState: state },
        { token: tokens.alice!, capabilities: elicits, client: "alice-app" },
      );
      expect(malformed.body.error?.code, JSON.stringify(inputResponses)).toBe(-32602);
      expect(malformed.body.error?.message).toMatch(/inputResponses/);
    }
    expect(existsSync(marker)).toBe(false);

    // The retry with accept: the command runs, and the result is the synchronous call's.
    const ran = await modern(
      url(),
      "tools/call",
      { ...call, inputResponses: accept, requestState: state },
      { token: tokens.alice!, capabilities: elicits, client: "alice-app" },
    );
    expect(ran.body.error).toBeUndefined();
    expect(ran.body.result?.resultType).toBe("complete");
    expect(resultText(ran.body.result)).toContain("exit_code: 0");
    expect(resultText(ran.body.result)).toContain("accepted by alice");
    expect(readFileSync(marker, "utf8")).toBe("ran\n");
    // Replayed: refused, nothing runs again.
    const replay = await modern(
      url(),
      "tools/call",
      { ...call, inputResponses: accept, requestState: state },
      { token: tokens.alice!, capabilities: elicits, client: "alice-app" },
    );
    expect(replay.body.error?.code).toBe(-32602);
    expect(readFileSync(marker, "utf8")).toBe("ran\n");

    // Declined: rejected, it never runs.
    const declined = { name: "run_command", arguments: { command: `echo no >> ${marker}` } };
    const again = await modern(url(), "tools/call", declined, { token: tokens.alice!, capabilities: elicits, client: "alice-app" });
    expect(again.body.result?.resultType).toBe("input_required");
    const no = await modern(
      url(),
      "tools/call",
      { ...declined, inputResponses: { decision: { action: "decline" } }, requestState: again.body.result!.requestState },
      { token: tokens.alice!, capabilities: elicits, client: "alice-app" },
    );
    expect(no.body.result?.isError).toBe(true);
    expect(resultText(no.body.result)).toMatch(/Rejected by alice.*did not run/s);
    expect(readFileSync(marker, "utf8")).toBe("ran\n");
  }, 90_000);

  it("an agent is never offered an accept: its call waits for a person on another client, its answer an SSE stream open from the start", async () => {
    const call = modernRequest(
      "tools/call",
      { name: "run_command", arguments: { command: "echo agent-waits" } },
      { token: tokens.robot!, capabilities: elicits },
    );
    const opening = openStream(url(), { method: "POST", headers: call.headers, body: JSON.stringify(call.body) });
    const ref = await pendingRef("echo-agent-waits");
    // Nobody decided yet: the answer has begun all the same, at once (a wait of hours sends keepalives, not nothing;
    // the first comes at 15 s, after this wait).
    let timer: NodeJS.Timeout | undefined;
    const stream = await Promise.race([
      opening,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("no answer begun while the call waits for a decision")), 10_000))),
    ]);
    clearTimeout(timer);
    expect([stream.status, stream.contentType]).toEqual([200, "text/event-stream"]);
    const approve = cli(["approve", ref.run, ref.path]);
    expect(await approve.exit, approve.stderr()).toBe(0);
    await stream.ended;
    const answer = stream.events.find((m) => (m as { id?: unknown }).id === call.id) as { result?: { resultType?: string } } | undefined;
    expect(answer?.result?.resultType).toBe("complete");
    expect(resultText(answer?.result)).toContain("agent-waits");
  }, 60_000);

  it("an agent's task is decided by a person with spool approve across a server restart; tasks/get then gives the synchronous call's result, with the task's own times", async () => {
    const withTasks = { extensions: { [TASKS]: {} } };
    const created = await modern(
      url(),
      "tools/call",
      { name: "run_command", arguments: { command: "echo from-a-modern-task" } },
      { token: tokens.robot!, capabilities: { ...withTasks, ...elicits } },
    );
    const task = created.body.result!;
    expect(task.resultType).toBe("task");
    expect(task.status).toBe("working");
    expect(String(task.statusMessage)).toContain("waiting for a person");
    const taskId = String(task.taskId);

    await server.stop();
    server = await spawnServe(args());

    // The agent is told it waits; a person whose client elicits is asked.
    const waiting = await modern(url(), "tasks/get", { taskId }, { token: tokens.robot!, capabilities: { ...withTasks, ...elicits } });
    expect(waiting.body.result).toMatchObject({ status: "working", taskId, resultType: "complete" });
    expect(waiting.body.result).not.toHaveProperty("inputRequests");
    const asked = await modern(url(), "tasks/get", { taskId }, { token: tokens.alice!, capabilities: { ...withTasks, ...elicits } });
    expect(asked.body.result?.status).toBe("input_required");
    expect(JSON.stringify(asked.body.result?.inputRequests)).toContain("from-a-modern-task");

    const ref = await pendingRef("echo-from-a-modern-task");
    const approve = cli(["approve", ref.run, ref.path]);
    expect(await approve.exit, approve.stderr()).toBe(0);
    let done: Record<string, unknown> = {};
    await eventually(
      async () => {
        done = (await modern(url(), "tasks/get", { taskId }, { token: tokens.robot!, capabilities: withTasks })).body.result ?? {};
        return done.status === "completed";
      },
      30_000,
      "the task to complete",
    );
    const result = done.result as Record<string, unknown>;
    expect(result.isError).toBeFalsy();
    expect(resultText(result)).toContain("from-a-modern-task");
    expect(resultText(result)).toContain("exit_code: 0");
    expect(Date.parse(String(done.createdAt))).toBe(Date.parse(String(task.createdAt)));
    expect(Date.parse(String(done.lastUpdatedAt))).toBeGreaterThan(Date.parse(String(task.lastUpdatedAt)));
  }, 120_000);

  it("tasks/update carries a person's decision; tasks/cancel withdraws a waiting proposal and cancels a running command", async () => {
    const withTasks = { extensions: { [TASKS]: {} }, ...elicits };
    const as = (token: string) => ({ token, capabilities: withTasks, client: "tasker" });
    // tasks/update: an agent's answer decides nothing; a person's accepts.
    const made = await modern(url(), "tools/call", { name: "run_command", arguments: { command: "echo updated" } }, as(tokens.alice!));
    const taskId = String(made.body.result!.taskId);
    const accept = { decision: { action: "accept", content: { decision: "accept" } } };
    const updated = await modern(url(), "tasks/update", { taskId, inputResponses: accept }, as(tokens.alice!));
    expect(updated.body.result).toMatchObject({ resultType: "complete" });
    await eventually(async () => (await modern(url(), "tasks/get", { taskId }, as(tokens.alice!))).body.result?.status === "completed", 30_000, "completed");

    // A waiting one withdrawn: cancelled, it never runs.
    const marker = join(project, "cancelled-ran");
    const waiting = await modern(url(), "tools/call", { name: "run_command", arguments: { command: `echo x > ${marker}` } }, as(tokens.robot!));
    const waitingId = String(waiting.body.result!.taskId);
    const cancelled = await modern(url(), "tasks/cancel", { taskId: waitingId }, as(tokens.robot!));
    expect(cancelled.body.result).toMatchObject({ resultType: "complete" });
    const after = await modern(url(), "tasks/get", { taskId: waitingId }, as(tokens.robot!));
    expect(after.body.result?.status).toBe("cancelled");
    expect(existsSync(marker)).toBe(false);

    // A running one: its process dies.
    const seconds = `600.${process.pid}7`;
    const running = await modern(url(), "tools/call", { name: "run_command", arguments: { command: `exec sleep ${seconds}` } }, as(tokens.robot!));
    const runningId = String(running.body.result!.taskId);
    const ref = await pendingRef(`sleep-600-${process.pid}7`);
    const approve = cli(["approve", ref.run, ref.path]);
    expect(await approve.exit, approve.stderr()).toBe(0);
    let pid = 0;
    await eventually(() => (pid = processWith(["sleep", seconds])) > 0, 20_000, "the command to start");
    expect((await modern(url(), "tasks/get", { taskId: runningId }, as(tokens.robot!))).body.result?.status).toBe("working");
    await modern(url(), "tasks/cancel", { taskId: runningId }, as(tokens.robot!));
    await eventually(() => !alive(pid), 20_000, "the cancelled command's process to die");
    await eventually(
      async () => (await modern(url(), "tasks/get", { taskId: runningId }, as(tokens.robot!))).body.result?.status === "cancelled",
      20_000,
      "the task to be cancelled",
    );
    // Not a task of anything: an error, not a crash.
    const unknown = await modern(url(), "tasks/get", { taskId: "spool-nothing" }, as(tokens.robot!));
    expect(unknown.body.error?.code).toBe(-32602);
  }, 120_000);

  it("2025-11-25 sessions: a runner credential gets none; one principal holds 8 at most (its least recently used one ends); the admin still gets one", async () => {
    const initialize = (token: string) =>
      fetch(url(), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", Authorization: `Bearer ${token}` },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "capped", version: "1" } },
        }),
      });
    const runner = await initialize(tokens["ci-runner"]!);
    expect(runner.status).toBe(403);
    expect(await runner.text()).toMatch(/runner credential/);
    const modernRunner = await modern(url(), "tools/list", {}, { token: tokens["ci-runner"]! });
    expect(modernRunner.status).toBe(403);
    // One principal's sessions past 8: its least recently used idle one ends, so it never holds more.
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const answer = await initialize(tokens.bob!);
      expect(answer.status).toBe(200);
      ids.push(answer.headers.get("mcp-session-id")!);
      await answer.body?.cancel();
    }
    const alive = async (id: string) =>
      (
        await fetch(url(), {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json, text/event-stream",
            Authorization: `Bearer ${tokens.bob}`,
            "mcp-session-id": id,
            "mcp-protocol-version": "2025-11-25",
          },
          body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }),
        })
      ).status;
    expect(await alive(ids[0]!)).toBe(404);
    expect(await alive(ids[1]!)).toBe(404);
    expect(await alive(ids[9]!)).toBe(200);
    const adminAnswer = await initialize(admin);
    expect(adminAnswer.status).toBe(200);
    await adminAnswer.body?.cancel();
  }, 60_000);

  it("subscriptions/listen over HTTP follows spool://proposals: updated when an agent's proposal appears and when a person decides it", async () => {
    const listen = modernRequest(
      "subscriptions/listen",
      { notifications: { resourceSubscriptions: ["spool://proposals"] } },
      { token: tokens.alice!, client: "watcher" },
    );
    const stream = await openStream(url(), { method: "POST", headers: listen.headers, body: JSON.stringify(listen.body) });
    expect(stream.status).toBe(200);
    const updates = () => stream.events.filter((e) => (e as { method?: string }).method === "notifications/resources/updated");
    await eventually(() => stream.events.length > 0, 10_000, "the acknowledgement");
    expect(stream.events[0]).toMatchObject({ params: { notifications: { resourceSubscriptions: ["spool://proposals"] } } });

    const call = modern(url(), "tools/call", { name: "run_command", arguments: { command: "echo listened-over-http" } }, { token: tokens.robot! });
    await eventually(() => updates().length >= 1, 20_000, "an update for the new proposal");
    expect(updates()[0]).toMatchObject({ params: { uri: "spool://proposals", _meta: { "io.modelcontextprotocol/subscriptionId": listen.id } } });
    const ref = await pendingRef("echo-listened-over-http");
    const seen = updates().length;
    const approve = cli(["approve", ref.run, ref.path]);
    expect(await approve.exit, approve.stderr()).toBe(0);
    await eventually(() => updates().length > seen, 20_000, "an update for the decision");
    expect(resultText((await call).body.result)).toContain("listened-over-http");
    stream.abort();
  }, 60_000);

  it("open streams close when their credential is revoked: a 2025-11-25 session's GET stream and a 2026-07-28 subscriptions/listen", async () => {
    const token = await principal("carol", "person");
    const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream", Authorization: `Bearer ${token}` };
    const init = await fetch(url(), {
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "carol-app", version: "1" } },
      }),
    });
    expect(init.status).toBe(200);
    await init.text();
    const sid = init.headers.get("mcp-session-id")!;
    const session = { ...headers, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" };
    await (await fetch(url(), { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })).text();
    const legacy = await openStream(url(), { method: "GET", headers: { ...session, Accept: "text/event-stream" } });
    expect(legacy.status).toBe(200);

    const listen = modernRequest("subscriptions/listen", { notifications: { resourcesListChanged: true } }, { token, client: "carol-app" });
    const stream = await openStream(url(), { method: "POST", headers: listen.headers, body: JSON.stringify(listen.body) });
    expect(stream.status).toBe(200);
    await eventually(() => stream.events.length > 0, 10_000, "the acknowledgement");
    expect(stream.events[0]).toMatchObject({
      method: "notifications/subscriptions/acknowledged",
      params: { notifications: { resourcesListChanged: true }, _meta: { "io.modelcontextprotocol/subscriptionId": listen.id } },
    });

    const client = await SpoolClient.connect(server.url, { token: admin });
    try {
      await client.call("token/revoke", { name: "carol" } as never);
    } finally {
      client.close();
    }
    const within = (p: Promise<void>) => Promise.race([p.then(() => "closed"), new Promise((r) => setTimeout(() => r("still open"), 10_000))]);
    expect(await within(legacy.ended)).toBe("closed");
    expect(await within(stream.ended)).toBe("closed");
    legacy.abort();
    stream.abort();
  }, 60_000);

  it("an open subscriptions/listen stream closes when its credential expires, with the listen's completion (ended by the server)", async () => {
    const token = await principal("dave", "person", Date.now() + 4000);
    const listen = modernRequest("subscriptions/listen", { notifications: { resourcesListChanged: true } }, { token, client: "dave-app" });
    const stream = await openStream(url(), { method: "POST", headers: listen.headers, body: JSON.stringify(listen.body) });
    expect(stream.status).toBe(200);
    await eventually(() => stream.events.length > 0, 10_000, "the acknowledgement");
    const closed = await Promise.race([stream.ended.then(() => "closed"), new Promise((r) => setTimeout(() => r("still open"), 15_000))]);
    expect(closed).toBe("closed");
    expect(stream.events.at(-1)).toMatchObject({
      id: listen.id,
      result: { resultType: "complete", _meta: { "io.modelcontextprotocol/subscriptionId": listen.id } },
    });
    stream.abort();
    // And the expired credential gets nothing more.
    const after = await modern(url(), "tools/list", {}, { token });
    expect(after.status).toBe(401);
  }, 60_000);
});
