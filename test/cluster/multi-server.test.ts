// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY, RUN } from "../../src/core/status.js";
import { createLogger } from "../../src/logger.js";
import { factsText, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { firstAnswering, RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { alive, type RunnerProcess, type ServeProcess, spawnRunner, spawnServe } from "../helpers/process.js";
import { RUNNER_CLAIM } from "../helpers/runner-claim.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, tempDir } from "../helpers/server.js";

/** A process and its parents up to pid 1, from /proc. */
function ancestry(pid: number): number[] {
  const line: number[] = [];
  for (let at = pid; at > 1 && line.length < 64; ) {
    line.push(at);
    try {
      at = Number(
        readFileSync(`/proc/${at}/stat`, "utf8")
          .replace(/^.*\) /s, "")
          .split(" ")[1],
      );
    } catch {
      break;
    }
  }
  return line;
}

/**
 * Two `spool serve` processes on one PostgreSQL database, each with its own home and the same token file:
 * clients of one project on either see one world, and when one server is killed the other takes over.
 */
describeWithInfra("postgres", "several servers on one PostgreSQL database", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let model: ScriptedModel;
  let a: ServeProcess;
  let b: ServeProcess;
  let token: string;
  const root = tempDir("spool-team-");
  const clients: SpoolClient[] = [];
  const runners: RunnerClient[] = [];
  const processes: RunnerProcess[] = [];
  let tokenFile: string;

  const serve = (tokenFile: string) =>
    spawnServe(["--port", "0", "--home", tempDir(), "--database", db.url], {
      SPOOL_TOKEN_FILE: tokenFile,
      // A runner whose server is gone stops its commands after 7 s of this (stopBeforeServer): with 3 s (1.5 s), a
      // busy machine's reconnect to B took longer and the runner stopped the count it was to resume (CI, ciO).
      SPOOL_RUNNER_GRACE_MS: "12000",
      SPOOL_TOOL_YIELD_MS: "2000",
      SPOOL_MODEL_TEST: "openai/test-model",
      OPENAI_BASE_URL: model.baseUrl,
      OPENAI_API_KEY: "sk-test",
    });
  const clientOf = async (server: ServeProcess, name: string) => {
    const client = await SpoolClient.connect(server.url, { token });
    await client.initialize("team", { root, client: { name, version: "1" } });
    clients.push(client);
    return client;
  };
  /** A runner of the test process attached to `first`, reconnecting to the other server when it goes. */
  const runnerOn = async (first: ServeProcess, other: ServeProcess, name: string) => {
    const runner = new RunnerClient({
      connect: firstAnswering([first.url, other.url], (url) => SpoolClient.connect(url, { token })),
      project: "team",
      name,
      backend: new LocalBackend(),
      log: createLogger("silent"),
      backoffMs: { min: 50, max: 200 },
    });
    await runner.start();
    runners.push(runner);
    return runner;
  };
  const entry = (client: SpoolClient, run: string, path: string) => client.request("entry/get", { run, path });

  beforeAll(async () => {
    db = await freshDatabase();
    model = await ScriptedModel.start();
    tokenFile = join(tempDir(), "token");
    writeFileSync(tokenFile, "team-token-0123456789abcdef0123456789abcdef\n", { mode: 0o600 });
    token = readFileSync(tokenFile, "utf8").trim();
    [a, b] = await Promise.all([serve(tokenFile), serve(tokenFile)]);
  }, 120_000);
  afterAll(async () => {
    for (const runner of runners) await runner.stop().catch(() => undefined);
    for (const runner of processes) await runner.stop();
    for (const client of clients) client.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await model?.close();
    await db?.drop();
  });

  it("a proposal made on A is announced on B and accepted there; its output reaches a watcher on A live", async () => {
    const onA = await clientOf(a, "client-a");
    const onB = await clientOf(b, "client-b");
    await onA.call("run/create", { alias: "one" });
    const announced = onB.next("run/proposal", (p: any) => p.run === "one", 15_000);
    // The command goes on once the watcher on A has had "first" (a file in the project): a fixed pause could end
    // before a busy machine's watch began.
    const command = "printf 'first\\n'; until [ -e seen-first ]; do sleep 0.05; done; printf 'second\\n'";
    const { path } = await onA.call("proposal/create", { run: "one", tool: "sh", command });
    expect((await announced).path).toBe(path);
    const resolvedOnA = onA.next("run/resolved", (p: any) => p.path === path, 15_000);
    await onB.call("run/resolve", { run: "one", path, decision: "accept" });
    expect((await resolvedOnA).resolvedBy).toBe("admin via client-b");
    // Watched from A while B's runner writes it: the first line arrives before the command ends.
    const chunks: string[] = [];
    let firstBeforeEnd = false;
    const finished = onA.next("stream/finished", (p: any) => p.path === path, 15_000);
    const watch = await onA.watch({ run: "one", path, channel: 1 }, (c) => {
      chunks.push(c.data.toString());
      if (chunks.join("").includes("first") && !chunks.join("").includes("second")) {
        firstBeforeEnd = true;
        writeFileSync(join(root, "seen-first"), "");
      }
    });
    const ended = await watch.ended;
    expect(chunks.join("")).toBe("first\nsecond\n");
    expect(firstBeforeEnd).toBe(true);
    expect([...ended.values()][0]).toMatchObject({ status: ENTRY.done, exit_code: 0 });
    expect((await finished).status).toBe(ENTRY.done);
  }, 60_000);

  it("accepted on B for the runner attached to A, it runs there; input and a cancel sent to B reach that runner", async () => {
    const onA = await clientOf(a, "client-a2");
    const onB = await clientOf(b, "client-b2");
    await runnerOn(a, b, "far");
    // One name per project across the servers: the same name on B is refused.
    const twin = await SpoolClient.connect(b.url, { token });
    clients.push(twin);
    await twin.initialize("team", { root });
    await expect(twin.call("runner/attach", { name: "far", backend: "local" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    await onA.request("run/create", { alias: "two" });
    // Accepted on B, naming the runner attached to A: A dispatches it.
    const asks = await onA.request("proposal/create", { run: "two", tool: "sh", command: "read x; echo got:$x" });
    const accepted = await onB.request("run/resolve", { run: "two", path: asks.path, decision: "accept", runner: "far" });
    expect(accepted).toMatchObject({ runner: "far", status: ENTRY.done });
    // Input typed on B reaches the command the runner on A runs.
    await eventually(async () => (await entry(onB, "two", asks.path)).attributes.process !== undefined, 15_000, "the command to start on A's runner");
    await onB.request("stream/input", { run: "two", path: asks.path, data: "hello\n" });
    await eventually(
      async () =>
        (await entry(onB, "two", asks.path)).status !== ENTRY.done || (await entry(onB, "two", "sh://turn_1/read-x-echo-got-x_1")).status !== ENTRY.streaming,
      15_000,
      "the command to answer",
    );
    expect((await entry(onB, "two", "sh://turn_1/read-x-echo-got-x_1")).body).toBe("got:hello\n");
    // A cancel from B: the runner on A kills the process.
    const long = await onA.request("proposal/create", { run: "two", tool: "sh", command: "echo up; sleep 60" });
    await onA.request("run/resolve", { run: "two", path: long.path, decision: "accept", runner: "far" });
    await eventually(async () => (await entry(onB, "two", long.path)).attributes.process?.pid !== undefined, 15_000, "the long command to start");
    const pid = (await entry(onB, "two", long.path)).attributes.process.pid as number;
    await onB.call("stream/cancel", { run: "two", path: long.path, reason: "from B" });
    await eventually(() => !alive(pid), 10_000, "the process on A's runner to die");
    expect((await entry(onA, "two", "sh://turn_1/echo-up-sleep-60_1")).status).toBe(ENTRY.cancelled);
  }, 60_000);

  it("proposed on B for the runner attached to A: B records that runner; an accept on B naming none is passed on to A and runs there", async () => {
    const onA = await clientOf(a, "client-a5");
    const onB = await clientOf(b, "client-b5");
    await runnerOn(a, b, "yonder");
    await onB.call("run/create", { alias: "proposed-far" });
    await expect(onB.call("proposal/create", { run: "proposed-far", tool: "sh", command: "true", runner: "nowhere" })).rejects.toMatchObject({
      data: { code: "NO_RUNNER", runner: "nowhere" },
    });
    const { path } = await onB.call("proposal/create", { run: "proposed-far", tool: "sh", command: "echo yonder", runner: "yonder" });
    expect((await entry(onA, "proposed-far", path)).attributes.runner).toBe("yonder");
    await expect(onB.call("run/resolve", { run: "proposed-far", path, decision: "accept", runner: "local" })).rejects.toMatchObject({
      data: { code: "CONFLICT" },
    });
    const accepted = await onB.call("run/resolve", { run: "proposed-far", path, decision: "accept" });
    expect(accepted).toMatchObject({ runner: "yonder", status: ENTRY.done });
    await eventually(
      async () => (await entry(onB, "proposed-far", `${path.replace(/^log:\/\/(turn_\d+)\/sh\//, "sh://$1/")}_1`)).status === ENTRY.done,
      15_000,
      "the command to finish",
    );
    expect((await entry(onB, "proposed-far", `${path.replace(/^log:\/\/(turn_\d+)\/sh\//, "sh://$1/")}_1`)).body).toBe("yonder\n");
  }, 60_000);

  it("proposed through B, accepted through A: every client is shown B's runner (local@B) before the decision, and B's runs it; runner/list names each runner's principal, server and host", async () => {
    const onA = await clientOf(a, "client-a-where");
    const onB = await clientOf(b, "client-b-where");
    const label = (server: ServeProcess) => `${hostname()}:${new URL(server.url).port}`;
    await onB.call("run/create", { alias: "where" });
    const { path } = await onB.call("proposal/create", { run: "where", tool: "sh", command: "echo started; sleep 30" });
    // Before the decision, on A's clients as on B's: B's embedded runner, named with B.
    for (const client of [onA, onB]) {
      const shown = factsText(proposalFacts((await entry(client, "where", path)).attributes));
      expect(shown).toContain(`default (local@${label(b)}; that server's own runner)`);
    }
    await onA.call("run/resolve", { run: "where", path, decision: "accept" });
    await eventually(async () => (await entry(onA, "where", path)).attributes.process?.pid !== undefined, 15_000, "the command to start");
    const pid = (await entry(onA, "where", path)).attributes.process.pid as number;
    // The process is B's: a descendant of B's server process, not of A's.
    const line = ancestry(pid);
    expect(line).toContain(b.child.pid);
    expect(line).not.toContain(a.child.pid);
    await onA.call("stream/cancel", { run: "where", path, reason: "seen" });
    await eventually(() => !alive(pid), 10_000, "the command to stop");
    // The runners as each server lists them: who attached each (its name is that principal's), the server and the machine.
    await runnerOn(a, b, "listed");
    const { runners } = await onA.call("runner/list", {});
    expect(runners.find((r) => r.name === "listed")).toMatchObject({ attachedBy: { name: "admin", role: "admin" }, server: label(a), host: hostname() });
    expect(runners.find((r) => r.name === "local")).toMatchObject({ attachedBy: null, server: label(a), host: hostname() });
    expect((await onB.call("runner/list", {})).runners.find((r) => r.name === "local")).toMatchObject({ server: label(b) });
  }, 60_000);

  it("a hand-made accept row with a wrong MAC, or none, is dropped and logged: the proposal stays pending and nothing runs; a real accept still does", async () => {
    const onA = await clientOf(a, "client-a-forge");
    const onB = await clientOf(b, "client-b-forge");
    await runnerOn(a, b, "forge-target");
    await onB.call("run/create", { alias: "forged" });
    const asks = await onB.call("proposal/create", { run: "forged", tool: "sh", command: "echo ran" });
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      const servers = (await sql.query<{ id: string; url: string }>("SELECT id, url FROM servers")).rows;
      const idOf = (server: ServeProcess) => Number(servers.find((r) => r.url === server.url)!.id);
      const project = (await sql.query<{ id: string; name: string; root: string }>("SELECT id, name, root FROM projects WHERE name = 'team'")).rows[0]!;
      /** What a server forwarding an accept writes, with `mac` in place of its MAC. */
      const forge = async (to: ServeProcess, from: ServeProcess, runner: string | undefined, mac: string) => {
        const body = JSON.stringify({
          t: "accept",
          to: idOf(to),
          from: idOf(from),
          id: 4242,
          project: { id: Number(project.id), name: project.name, root: project.root },
          target: { run: "forged", path: asks.path },
          options: { ...(runner ? { runner } : {}), resolver: null, resolvedBy: "forged cluster event" },
        });
        const { rows } = await sql.query<{ id: string }>(
          "INSERT INTO cluster_events (server_id, seq, body, created_at, mac) VALUES ($1, $2, $3, $4, $5) RETURNING id",
          [idOf(from), 1_000_000, body, Date.now(), mac],
        );
        await sql.query("SELECT pg_notify('spool_cluster', $1)", [`e:${idOf(from)}:${rows[0]!.id}:${idOf(to)}`]);
      };
      // To A for the runner attached there, with a wrong MAC; to B for its embedded runner, with none.
      await forge(a, b, "forge-target", "ab".repeat(32));
      await forge(b, a, undefined, "");
      await eventually(() => a.output().includes("dropped a row of cluster_events"), 15_000, "A to log the drop");
      await eventually(() => b.output().includes("dropped a row of cluster_events"), 15_000, "B to log the drop");
    } finally {
      await sql.end();
    }
    expect(a.output()).toMatch(/dropped a row of cluster_events unread \(last: id \d+, said to be from server \d+: wrong MAC\)/);
    expect(b.output()).toMatch(/dropped a row of cluster_events unread \(last: id \d+, said to be from server \d+: no MAC\)/);
    for (const client of [onA, onB]) expect((await entry(client, "forged", asks.path)).status).toBe(ENTRY.proposed);
    expect((await onA.call("proposal/list", {})).proposals.map((p: any) => p.path)).toContain(asks.path);
    // Nothing ran: no output channel was made.
    expect((await onA.call("entry/list", { run: "forged", pattern: "sh://*" })).entries).toEqual([]);
    // Accepted for real on B, naming the runner on A: forwarded with a good MAC, it runs there.
    const resolved = onA.next("run/resolved", (p: any) => p.path === asks.path, 15_000);
    const finished = onA.next("stream/finished", (p: any) => p.path === asks.path, 15_000);
    const accepted = await onB.call("run/resolve", { run: "forged", path: asks.path, decision: "accept", runner: "forge-target" });
    expect(accepted).toMatchObject({ runner: "forge-target", status: ENTRY.done });
    expect((await resolved).resolvedBy).toBe("admin via client-b-forge");
    expect(await finished).toMatchObject({ status: ENTRY.done, exit_code: 0 });
    expect((await entry(onA, "forged", "sh://turn_1/echo-ran_1")).body).toBe("ran\n");
  }, 60_000);

  it("a runner name is its first principal's on every server: a runner credential cannot take it on B once its runner left A; an admin's runner that does is not the one shown, and an accept on A is FACTS_CHANGED", async () => {
    const onA = await clientOf(a, "client-a-squat");
    await onA.call("run/create", { alias: "squat" });
    const mint = async (name: string, role: "runner" | "admin") =>
      (await onA.call("token/create", { name, role, ...(role === "runner" ? { projects: ["team"] } : {}) })).token;
    const as = async (server: ServeProcess, secret: string) => {
      const client = await SpoolClient.connect(server.url, { token: secret });
      await client.initialize("team", { root, client: { name: "squat-runner", version: "1" } });
      clients.push(client);
      return client;
    };
    const claim = RUNNER_CLAIM;
    const builder = await as(a, await mint("squat-builder", "runner"));
    await builder.call("runner/attach", { name: "squat-box", backend: "local", sandbox: claim });
    const { path } = await onA.call("proposal/create", {
      run: "squat",
      tool: "sh",
      command: "echo for builder",
      runner: "squat-box",
      sandbox: "workspace-write",
    });
    const shown = (await entry(onA, "squat", path)).attributes;
    expect(proposalFacts(shown).runnerClaim).toMatchObject({ attachedBy: "squat-builder", attachedAs: "runner" });
    // The builder's runner leaves A; on B, another runner credential is refused the name (the name is recorded in the
    // shared database, not in A's memory), and nothing is attached under it.
    builder.close();
    await eventually(async () => !(await onA.call("runner/list", {})).runners.some((r) => r.name === "squat-box"), 10_000, "squat-box to leave");
    const other = await as(b, await mint("squat-other", "runner"));
    await expect(other.call("runner/attach", { name: "squat-box", backend: "local", sandbox: claim })).rejects.toMatchObject({
      data: { code: "CONFLICT", name: "squat-box", principal: "squat-builder" },
    });
    expect((await onA.call("runner/list", {})).runners.some((r) => r.name === "squat-box")).toBe(false);
    // An admin's runner may take the name on B, but it is not the runner the person was shown: an accept on A
    // (with no facts revision, or the one shown) is refused and nothing runs.
    const admin = await as(b, await mint("squat-admin", "admin"));
    await admin.call("runner/attach", { name: "squat-box", backend: "local", sandbox: claim });
    expect((await admin.call("runner/list", {})).runners.find((r) => r.name === "squat-box")).toMatchObject({ attachedBy: { name: "squat-admin" } });
    const refused = await onA.call("run/resolve", { run: "squat", path, decision: "accept" }).catch((error: any) => error);
    expect(refused.data).toMatchObject({ code: "FACTS_CHANGED" });
    expect(refused.message).toContain('attached by admin "squat-admin"');
    const again = proposalFacts((await entry(onA, "squat", path)).attributes);
    expect(again.runnerClaim).toMatchObject({ attachedBy: "squat-admin", attachedAs: "admin" });
    expect((await entry(onA, "squat", path)).status).toBe(ENTRY.proposed);
  }, 60_000);

  it("a proposal for a runner another server lists without its facts (a server from before they were recorded) records no claim: an accept is held to the name's owner, so an admin's runner under the name is FACTS_CHANGED", async () => {
    const onB = await clientOf(b, "client-b-unclaimed");
    await onB.call("run/create", { alias: "unclaimed" });
    const mint = async (name: string, role: "runner" | "admin") =>
      (await onB.call("token/create", { name, role, ...(role === "runner" ? { projects: ["team"] } : {}) })).token;
    const as = async (server: ServeProcess, secret: string) => {
      const client = await SpoolClient.connect(server.url, { token: secret });
      await client.initialize("team", { root, client: { name: "unclaimed-runner", version: "1" } });
      clients.push(client);
      return client;
    };
    const builder = await as(a, await mint("unclaimed-builder", "runner"));
    await builder.call("runner/attach", { name: "unclaimed-box", backend: "local", sandbox: RUNNER_CLAIM });
    // A's row for it as a server that records no facts writes it: B knows where it is, not what it claims.
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      expect((await sql.query("UPDATE runner_locations SET info = '{}' WHERE name = 'unclaimed-box'")).rowCount).toBe(1);
    } finally {
      await sql.end();
    }
    const { path } = await onB.call("proposal/create", {
      run: "unclaimed",
      tool: "sh",
      command: "echo for builder",
      runner: "unclaimed-box",
      sandbox: "workspace-write",
    });
    expect(proposalFacts((await entry(onB, "unclaimed", path)).attributes).runnerClaim).toBeNull();
    // The builder's runner leaves A; an admin's runner takes the name on B (an admin may attach under any name).
    builder.close();
    await eventually(async () => !(await onB.call("runner/list", {})).runners.some((r) => r.name === "unclaimed-box"), 10_000, "unclaimed-box to leave");
    const admin = await as(b, await mint("unclaimed-admin", "admin"));
    let ran = false;
    admin.handle("runner/exec", () => {
      ran = true;
      return { started: true, target: { backend: "local" } };
    });
    await admin.call("runner/attach", { name: "unclaimed-box", backend: "local", sandbox: RUNNER_CLAIM });
    // It is not the builder's runner the name belongs to: the accept is refused, the proposal recorded with the claim
    // that holds and asked again; nothing ran.
    const refused = await onB.call("run/resolve", { run: "unclaimed", path, decision: "accept" }).catch((error: any) => error);
    expect(refused.data).toMatchObject({ code: "FACTS_CHANGED", factsRevision: 2 });
    expect(refused.message).toContain('attached by admin "unclaimed-admin"');
    const again = await entry(onB, "unclaimed", path);
    expect(again.status).toBe(ENTRY.proposed);
    expect(proposalFacts(again.attributes).runnerClaim).toMatchObject({ attachedBy: "unclaimed-admin", attachedAs: "admin" });
    expect(ran).toBe(false);
    // Decided again on those facts, it runs there.
    const accepted = await onB.call("run/resolve", { run: "unclaimed", path, decision: "accept", facts: 2 });
    expect(accepted.runner).toBe("unclaimed-box");
    await eventually(async () => ran, 10_000, "the admin's runner to be sent it");
  }, 60_000);

  it("killing A: its runner resumes on B with nothing lost or repeated; a producer whose owner never returns ends 499 once; a proposal shown with A's runner is shown again with B's (local@B), an accept on the old facts is FACTS_CHANGED, and the run continues on B", async () => {
    const onA = await clientOf(a, "client-a3");
    const onB = await clientOf(b, "client-b3");
    // A real `spool runner` process given both servers: it attaches to A, and moves to B when A dies.
    const mover = await spawnRunner(
      ["--server", `${a.url},${b.url}`, "--token-file", tokenFile, "--project", "team", "--name", "mover", "--backend", "local", "--state-dir", tempDir()],
      { SPOOL_LOG: "info" },
    );
    processes.push(mover);
    await onA.call("run/create", { alias: "three" });
    // A command that counts for a while on the runner attached to A.
    const counting = await onA.call("proposal/create", { run: "three", tool: "sh", command: "for i in $(seq 1 60); do echo $i; sleep 0.05; done" });
    await onA.call("run/resolve", { run: "three", path: counting.path, decision: "accept", runner: "mover" });
    // A producer owned by a client of A (runner "self") that never comes back.
    const orphan = await onA.call("proposal/create", { run: "three", tool: "sh", sandbox: "full", command: "orphaned" });
    const self = await onA.call("run/resolve", { run: "three", path: orphan.path, decision: "accept", runner: "self" });
    await onA.call("stream", { run: "three", path: orphan.path, channel: 1, chunk: "partial\n" });
    // A model run that waits on a proposal made through A.
    model.reply({ tools: [{ id: "call_1", name: "sh", arguments: { command: "echo from-the-model" } }] }, { text: "done" });
    const proposed = onB.next("run/proposal", (p: any) => p.run === "agent", 15_000);
    await onA.call("run/create", { alias: "agent", model: "test", prompt: "Say something." });
    const proposal = await proposed;
    await eventually(
      async () => (await entry(onB, "three", counting.path.replace("log://turn_1/sh/", "sh://turn_1/").concat("_1"))).bytes > 0,
      15_000,
      "the count to start",
    );

    // The waiting proposal was made through A: every client is shown A's runner, until A stops.
    const label = (server: ServeProcess) => `${hostname()}:${new URL(server.url).port}`;
    const shownAs = async (client: SpoolClient) => factsText(proposalFacts((await entry(client, "agent", proposal.path)).attributes));
    expect(await shownAs(onB)).toContain(`default (local@${label(a)}; that server's own runner)`);
    const announcedAgain = onB.next("run/proposal", (p: any) => p.path === proposal.path && p.attributes.factsRevision === 2, 30_000);

    const finishedOnB: any[] = [];
    onB.on("stream/finished", (p: any) => finishedOnB.push(p));
    expect(await a.stop("SIGKILL")).toBe(null);
    // The runner reconnects to B and finishes the count there.
    const out = counting.path.replace("log://turn_1/sh/", "sh://turn_1/").concat("_1");
    // Within the test's own bound; if it does not come, what the runner and B said is the failure's text.
    await eventually(async () => (await entry(onB, "three", out)).status === ENTRY.done, 60_000, "the count to finish through B").catch((error) => {
      throw new Error(`${error.message}; the runner said:\n${mover.output()}\nserver B said:\n${b.output()}`);
    });
    const body = (await entry(onB, "three", out)).body as string;
    expect(mover.output()).toMatch(/reconnected; resumed 1/);
    expect(body).toBe(`${Array.from({ length: 60 }, (_, i) => i + 1).join("\n")}\n`);
    // The "self" producer's owner died with A: after the grace, B ends it 499, once.
    expect(self.resumeToken).toBeTruthy();
    await eventually(() => finishedOnB.some((p) => p.path === orphan.path), 60_000, "the orphan to end").catch((error) => {
      throw new Error(`${error.message}; server B said:\n${b.output()}`);
    });
    expect(finishedOnB.filter((p) => p.path === orphan.path)).toEqual([expect.objectContaining({ status: ENTRY.cancelled, outcome: "aborted" })]);
    expect((await entry(onB, "three", "sh://turn_1/orphaned_1")).body).toBe("partial\n");
    // The proposal A's runner was to run: B's runner in its place, announced again to every client before anyone decides.
    const again = await announcedAgain;
    expect(factsText(proposalFacts(again.attributes))).toContain(`default (local@${label(b)}; that server's own runner)`);
    expect(await shownAs(onB)).toContain(`local@${label(b)}`);
    // An accept on the facts first shown (revision 1, local@A) is refused, and nothing runs.
    const stale = await onB.call("run/resolve", { run: "agent", path: proposal.path, decision: "accept", facts: 1 }).catch((error: any) => error);
    expect(stale.data).toMatchObject({ code: "FACTS_CHANGED", factsRevision: 2, runnerServer: label(b) });
    expect(stale.message).toContain(`local@${label(b)}`);
    expect((await entry(onB, "agent", proposal.path)).status).toBe(ENTRY.proposed);
    // The run that waited on a proposal continues on B once it is accepted there, on the facts shown now: B's runner runs it.
    await onB.call("run/resolve", { run: "agent", path: proposal.path, decision: "accept", facts: 2 });
    expect((await entry(onB, "agent", proposal.path)).attributes.runnerServer).toMatchObject({ label: label(b) });
    await eventually(async () => (await onB.call("run/get", { run: "agent" })).run.status === RUN.done, 30_000, "the agent run to finish on B");
    expect(JSON.stringify(model.requests.at(-1))).toContain("from-the-model");
  }, 180_000);

  it("an accept that reaches B while the server shown with the runner is dead (before B saw it go) is FACTS_CHANGED: B's runner is recorded and announced, nothing runs until accepted again", async () => {
    const onB = await clientOf(b, "client-b4");
    const label = (server: ServeProcess) => `${hostname()}:${new URL(server.url).port}`;
    await onB.call("run/create", { alias: "four" });
    const { path } = await onB.call("proposal/create", { run: "four", tool: "sh", command: "echo four" });
    // A stopped (the test before) and B took over what it held then; this proposal is made to look recorded for A's
    // runner, as one is when A dies after it is proposed and before B notices (B noticing is what the test before shows).
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      const { rows } = await sql.query<{ id: string }>("SELECT id FROM servers WHERE url = $1", [a.url]);
      const moved = { id: Number(rows[0]!.id), label: label(a) };
      await sql.query("UPDATE entries SET attributes = jsonb_set(attributes::jsonb, '{runnerServer}', $1::jsonb)::text WHERE path = $2", [
        JSON.stringify(moved),
        path,
      ]);
    } finally {
      await sql.end();
    }
    expect(factsText(proposalFacts((await entry(onB, "four", path)).attributes))).toContain(`local@${label(a)}`);
    const announced = onB.next("run/proposal", (p: any) => p.path === path && p.attributes.factsRevision === 2, 15_000);
    // Without `facts` (the client did not say what it showed): refused all the same, the runner it was shown is gone.
    const refused = await onB.call("run/resolve", { run: "four", path, decision: "accept" }).catch((error: any) => error);
    expect(refused.data).toMatchObject({ code: "FACTS_CHANGED", factsRevision: 2, runnerServer: label(b) });
    expect(refused.message).toContain(`local@${label(a)}`);
    expect(factsText(proposalFacts((await announced).attributes))).toContain(`default (local@${label(b)}; that server's own runner)`);
    expect((await entry(onB, "four", path)).status).toBe(ENTRY.proposed);
    // Decided again on what is shown now: it runs on B.
    const finished = onB.next("stream/finished", (p: any) => p.path === path, 15_000);
    await onB.call("run/resolve", { run: "four", path, decision: "accept", facts: 2 });
    expect(await finished).toMatchObject({ status: ENTRY.done, exit_code: 0 });
    expect((await entry(onB, "four", path)).attributes.runnerServer).toMatchObject({ label: label(b) });
  }, 60_000);
});
