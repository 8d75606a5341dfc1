import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { openStore } from "../../src/store/sqlite/database.js";
import { startCliInProcess } from "../helpers/cli-in-process.js";
import { countRunQueueWait } from "../helpers/cpu-wait.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { type Receiver, signedBy, startReceiver } from "../helpers/receiver.js";
import { eventually, tempDir } from "../helpers/server.js";

// Notifications over real processes: `spool serve` (the `spool notify`, `spool audit` and `spool reject` commands
// run in the test's process, helpers/cli-in-process.ts), and a local HTTP receiver that records what arrives (issue 46).

interface Served {
  home: string;
  root: string;
  port: number;
  serve: ServeProcess;
  admin: SpoolClient;
  env: NodeJS.ProcessEnv;
  spool(args: string[]): Promise<{ code: number | null; out: string; err: string }>;
  /** Stops `spool serve` and starts it again on the same home; `whileStopped` may change its store in between. */
  restart(whileStopped?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

const receivers: Receiver[] = [];
const served: Served[] = [];
const clients: SpoolClient[] = [];
afterAll(async () => {
  for (const c of clients) if (!c.closed) c.close();
  for (const s of served) await s.stop();
  for (const r of receivers) await r.close();
});

async function receiver(options: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
  const r = await startReceiver(options);
  receivers.push(r);
  return r;
}

async function serve(project: string, env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const home = tempDir();
  const root = tempDir("spool-root-");
  const port = await freePort();
  const args = ["--port", String(port), "--home", home, "--no-local-runner"];
  const token = () => readFileSync(join(home, "token"), "utf8").trim();
  const self: Served = {
    home,
    root,
    port,
    serve: await spawnServe(args, env),
    admin: null as unknown as SpoolClient,
    env: { SPOOL_HOME: home, SPOOL_SERVER: `ws://127.0.0.1:${port}/`, SPOOL_TOKEN_FILE: join(home, "token") },
    async spool(cli) {
      const child = startCliInProcess(cli, self.env, { cwd: root });
      const { code } = await child.exitsWithin(20_000);
      return { code, out: child.stdout(), err: child.stderr() };
    },
    async restart(whileStopped) {
      self.admin.close();
      await self.serve.stop();
      await whileStopped?.();
      self.serve = await spawnServe(args, env);
      self.admin = await SpoolClient.connect(self.serve.url, { token: token() });
      await self.admin.initialize(project, { root });
    },
    async stop() {
      if (!self.admin.closed) self.admin.close();
      await self.serve.stop();
    },
  };
  self.admin = await SpoolClient.connect(self.serve.url, { token: token() });
  await self.admin.initialize(project, { root });
  served.push(self);
  return self;
}

let shared: Promise<Served> | undefined;

/**
 * `spool serve` for a test that neither restarts it nor changes its environment: one process these tests share (a
 * start costs ~2 s of CPU), each in a project of its own with receivers of its own, its admin client initialized there.
 */
async function sharedServe(project: string): Promise<Served> {
  shared ??= serve("shared");
  const s = await shared;
  const admin = await SpoolClient.connect(s.serve.url, { token: readFileSync(join(s.home, "token"), "utf8").trim() });
  clients.push(admin);
  await admin.initialize(project, { root: s.root });
  return { ...s, admin };
}

const json = (r: { body: string }) => JSON.parse(r.body) as Record<string, unknown> & { facts: { command: string }; text: string; url: string };

describe("spool notify", () => {
  it("a receiver gets a signed proposal notification within 2 s: the facts, a link to the proposal on the page, its text escaped", async () => {
    const hook = await receiver();
    const s = await sharedServe("notified");
    const added = await s.spool(["notify", "add", "hook", hook.url, "--events", "proposal"]);
    expect(added.code, added.err).toBe(0);
    expect(added.out).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    const secret = added.out.trim();

    await s.admin.call("run/create", { alias: "build" });
    const command = "make \u001b[31mall";
    // Waited for as an event; the promise is checked against the proposal's own time, by the server's clock (this
    // machine's): the client's request and its answer are not the server's (a busy fresh clone, ciX: 2,076 ms counted
    // from before the request was sent). The 2 s are the server's and the receiver's own time: what the kernel kept
    // either ready but off the CPU is added back, measured (test/helpers/cpu-wait.ts) — ~0 on a quiet machine, where
    // the bound is 2 s exactly; ciY's Node 24 pass, both cores saturated, took 2,748 ms.
    const queued = countRunQueueWait([s.serve.child.pid, process.pid]);
    const { path } = await s.admin.call("proposal/create", { run: "build", tool: "sh", command, env: { CI: "1" } });
    const [got] = await hook.waitFor(1, 30_000);
    const withheld = queued.waited();
    const made = (await s.admin.call("entry/get", { run: "build", path })).createdAt!;
    expect(got!.at - made, `${got!.at - made} ms, of which the CPU was withheld ${Math.round(withheld)} ms`).toBeLessThan(2_000 + withheld);
    expect(got!.method).toBe("POST");
    expect(got!.headers["x-spool-event"]).toBe("proposal");
    expect(got!.headers["x-spool-delivery"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(signedBy(got!.body, got!.headers["x-spool-signature"], secret)).toBe(true);
    expect(signedBy(got!.body, got!.headers["x-spool-signature"], `${secret}x`)).toBe(false);
    const body = json(got!);
    expect(body).toMatchObject({ event: "proposal", project: "notified", run: "build", path, decision: null });
    expect(body.proposedBy).toMatch(/^admin via /);
    expect(body.delivery).toBe(got!.headers["x-spool-delivery"]);
    // Env values stay home unless the receiver opted in (test/notify/secrets.test.ts): the name, not the value.
    expect(body.facts).toMatchObject({ tool: "sh", command, env: [["CI", "(left out)"]] });
    expect(body.url).toBe(`http://127.0.0.1:${s.port}/#/notified/build/${encodeURIComponent(path)}`);
    expect(body.text).toContain("make \\e[31mall");
    expect(body.text).not.toContain("\u001b");
    expect(body.text).toContain("CI='(left out)'");
    expect(body.text).not.toContain("CI=1");

    const listed = JSON.parse((await s.spool(["notify", "list", "--json"])).out) as { name: string; events: string[]; pending: number }[];
    // The server is shared: the other tests' receivers may be listed too.
    expect(listed.filter((t) => t.name === "hook")).toMatchObject([{ name: "hook", events: ["proposal"], format: "json", pending: 0 }]);
    expect(JSON.stringify(listed)).not.toContain(secret);
  }, 60_000);

  it("a receiver failing twice gets the same delivery id a third time, the retries seconds apart", async () => {
    const hook = await receiver({ answers: [500, 503] });
    const s = await sharedServe("flaky");
    expect((await s.spool(["notify", "add", "flaky", hook.url])).code).toBe(0);
    await s.admin.call("run/create", { alias: "r" });
    const { path } = await s.admin.call("proposal/create", { run: "r", tool: "sh", command: "echo once" });
    const got = await hook.waitFor(3, 20_000);
    expect(got.map((r) => r.answered)).toEqual([500, 503, 200]);
    expect(new Set(got.map((r) => r.headers["x-spool-delivery"])).size).toBe(1);
    expect(got.every((r) => r.body === got[0]!.body)).toBe(true);
    expect(json(got[2]!).path).toBe(path);
    expect(got[1]!.at - got[0]!.at).toBeLessThan(5_000);
    // Taken at last: nothing is owed any more.
    await eventually(async () => (await s.admin.call("notify/list", {})).targets.find((t) => t.name === "flaky")?.pending === 0, 5_000, "the outbox to empty");
  }, 60_000);

  it("a notification not delivered before a server restart is delivered after it", async () => {
    const port = await freePort();
    const s = await serve("restarted");
    const url = `http://127.0.0.1:${port}/hook`;
    expect((await s.spool(["notify", "add", "later", url, "--events", "proposal"])).code).toBe(0);
    await s.admin.call("run/create", { alias: "r" });
    const { path } = await s.admin.call("proposal/create", { run: "r", tool: "sh", command: "echo after the restart" });
    // Nobody listens yet: the delivery fails and stays owed.
    await eventually(
      async () => {
        const [t] = (await s.admin.call("notify/list", {})).targets;
        return t?.pending === 1 && t.lastError !== null;
      },
      10_000,
      "a failed attempt",
    );
    await s.serve.stop();
    const hook = await receiver({ port });
    await s.restart();
    const [got] = await hook.waitFor(1, 15_000);
    expect(json(got!)).toMatchObject({ event: "proposal", project: "restarted", run: "r", path });
  }, 60_000);

  it("a delivery in flight when the server stops is sent again after the restart, with the same id and body (at least once: the receiver drops an id it has seen), and no more once taken", async () => {
    // The first attempt gets no answer: it is in flight when the server stops, which cuts it short (the receiver may
    // have acted on it: its answer is what was lost). The next start sends it again at once.
    const hook = await receiver({ answers: [0] });
    const s = await serve("inflight");
    expect((await s.spool(["notify", "add", "hook", hook.url, "--events", "proposal"])).code).toBe(0);
    await s.admin.call("run/create", { alias: "r" });
    const { path } = await s.admin.call("proposal/create", { run: "r", tool: "sh", command: "echo in flight" });
    const [first] = await hook.waitFor(1, 15_000);
    expect(first!.answered).toBe(0);
    await s.restart();
    const [, again] = await hook.waitFor(2, 15_000);
    expect(again!.headers["x-spool-delivery"]).toBe(first!.headers["x-spool-delivery"]);
    expect(again!.body).toBe(first!.body);
    expect(json(again!).path).toBe(path);
    expect(again!.answered).toBe(200);
    // Taken: nothing is owed, so nothing is sent a third time.
    await eventually(async () => (await s.admin.call("notify/list", {})).targets.find((t) => t.name === "hook")?.pending === 0, 10_000, "the outbox to empty");
    expect(hook.received).toHaveLength(2);
  }, 60_000);

  it("slack and ntfy get their documented formats: Slack's {text} with mrkdwn escaped, ntfy's text body with Title, Click and Tags", async () => {
    const slack = await receiver();
    const ntfy = await receiver();
    const s = await sharedServe("formats");
    const slackSecret = (await s.spool(["notify", "add", "slack", slack.url, "--format", "slack", "--events", "proposal"])).out.trim();
    const ntfySecret = (await s.spool(["notify", "add", "phone", ntfy.url, "--format", "ntfy", "--events", "proposal", "--project", "formats"])).out.trim();
    await s.admin.call("run/create", { alias: "fmt" });
    const { path } = await s.admin.call("proposal/create", { run: "fmt", tool: "sh", command: "echo <!channel> & <http://evil|click>" });
    const [toSlack] = await slack.waitFor(1);
    const [toNtfy] = await ntfy.waitFor(1);
    const link = `http://127.0.0.1:${s.port}/#/formats/fmt/${encodeURIComponent(path)}`;

    // Slack incoming webhooks: a JSON object whose `text` is mrkdwn, where &, < and > must be escaped as entities.
    expect(toSlack!.headers["content-type"]).toBe("application/json");
    expect(signedBy(toSlack!.body, toSlack!.headers["x-spool-signature"], slackSecret)).toBe(true);
    const message = JSON.parse(toSlack!.body) as { text: string };
    expect(Object.keys(message)).toEqual(["text"]);
    expect(message.text).toContain("echo &lt;!channel&gt; &amp; &lt;http://evil|click&gt;");
    expect(message.text).not.toContain("<!channel>");
    expect(message.text.endsWith(`<${link}|Open in Spool>`)).toBe(true);
    // Read at a glance: the title in bold, the facts in a code block (aligned in a fixed-width font), the link once.
    expect(message.text.startsWith("*Spool: a command waits for a decision in formats/fmt*\n```\ntool        sh\ncommand     echo &lt;!channel&gt;")).toBe(
      true,
    );
    expect(message.text.split(link).length - 1).toBe(1);

    // ntfy: the body is the message; Title, Click (the link opened on a tap) and Tags are headers (docs.ntfy.sh/publish).
    expect(toNtfy!.headers["content-type"]).toMatch(/^text\/plain/);
    expect(signedBy(toNtfy!.body, toNtfy!.headers["x-spool-signature"], ntfySecret)).toBe(true);
    expect(toNtfy!.body).toContain("echo <!channel> & <http://evil|click>");
    // The title is the Title header, not repeated in the message.
    expect(toNtfy!.body).not.toContain("waits for a decision");
    expect(toNtfy!.body.split("\n")[0]).toBe("  tool        sh");
    expect(toNtfy!.headers.title).toBe("Spool: a command waits for a decision in formats/fmt");
    expect(toNtfy!.headers.click).toBe(link);
    expect(toNtfy!.headers.tags).toBe("spool,proposal");
    expect(toNtfy!.headers["x-spool-event"]).toBe("proposal");

    // notify test: one signed test event now, and what the receiver answered.
    const tested = await s.spool(["notify", "test", "phone"]);
    expect(tested.code, tested.err).toBe(0);
    expect(tested.out).toMatch(/^phone answered 200 to delivery [0-9a-f-]{36}\n$/);
    const [, testEvent] = await ntfy.waitFor(2);
    expect(testEvent!.headers["x-spool-event"]).toBe("test");
    // A test reads as one: no command, no "-/-" run.
    expect(testEvent!.headers.title).toBe("Spool: test notification");
    expect(testEvent!.body).toMatch(/^spool notify test sent this: deliveries from Spool reach this receiver, signed with its secret\./);
    expect(testEvent!.body).not.toContain("-/-");
    expect(testEvent!.body).not.toContain("echo hello");
  }, 60_000);
});

describe("deadlines and the audit trail", () => {
  it("a deadline rejects an undecided proposal after a restart too, announces it as expired, and spool audit --json lists decisions with principals, the expiry and the notify add", async () => {
    const hook = await receiver();
    const s = await serve("deadline", { SPOOL_DECISION_TIMEOUT_MS: "10000" });
    const secret = (await s.spool(["notify", "add", "pager", hook.url, "--events", "decided,expired"])).out.trim();
    const { token } = await s.admin.call("token/create", { name: "alice", role: "person" });
    await s.admin.call("run/create", { alias: "late" });
    const { path: forgotten } = await s.admin.call("proposal/create", { run: "late", tool: "sh", command: "echo forgotten" });
    const { path: decided } = await s.admin.call("proposal/create", { run: "late", tool: "sh", command: "echo decided" });
    const file = join(tempDir("spool-alice-"), "alice.token");
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const alice = startCliInProcess(["reject", "late", decided, "--project", "deadline", "--reason", "not today"], { ...s.env, SPOOL_TOKEN_FILE: file });
    expect((await alice.exitsWithin(20_000)).code, alice.stderr()).toBe(0);
    // The deadline counts from the stored proposal: a restart neither resets nor loses it. Its 10 s pass while the
    // server is away (the proposal's stored creation moved back by them, not waited for): it is overdue at the restart.
    await s.restart(async () => {
      const store = openStore(join(s.home, "spool.db"));
      try {
        const moved = store.sqlite.prepare("UPDATE entries SET created_at = created_at - 10000 WHERE path = ? AND status = ?").run(forgotten, ENTRY.proposed);
        expect(moved.changes).toBe(1);
      } finally {
        await store.close();
      }
    });
    // Delivery is at least once: the `decided` one may have been in flight when the server stopped (the receiver got it,
    // its answer was cut short) and come again after the restart, with the same delivery id; one of each counts.
    const got = await hook.waitForDeliveries(2, 20_000);
    for (const r of hook.received) expect(got.find((g) => g.headers["x-spool-delivery"] === r.headers["x-spool-delivery"])?.body).toBe(r.body);
    const byEvent = Object.fromEntries(got.map((r) => [r.headers["x-spool-event"], json(r)]));
    expect(got.map((r) => `${r.headers["x-spool-event"]} ${json(r).path}`).sort()).toEqual([`decided ${decided}`, `expired ${forgotten}`]);
    expect(got.every((r) => signedBy(r.body, r.headers["x-spool-signature"], secret))).toBe(true);
    expect(byEvent.decided).toMatchObject({ path: decided, decision: { outcome: "reject", by: "alice via spool-cli", reason: "not today" } });
    expect(byEvent.expired).toMatchObject({ path: forgotten, decision: { outcome: "reject", by: "deadline" } });
    expect(byEvent.expired!.text).toContain("rejected by deadline: nobody decided within 10 s");
    // The title says what happened.
    expect(byEvent.decided!.text.split("\n")[0]).toBe("Spool: rejected by alice via spool-cli in deadline/late");
    expect(byEvent.expired!.text.split("\n")[0]).toBe("Spool: rejected by the deadline in deadline/late");

    const entry = await s.admin.call("entry/get", { run: "late", path: forgotten });
    expect(entry.status).toBe(ENTRY.rejected);
    expect(entry.attributes).toMatchObject({ resolvedBy: "deadline", decision: "reject" });
    expect(entry.attributes.reason).toMatch(/decisionTimeoutMs/);

    const audit = await s.spool(["audit", "--json"]);
    expect(audit.code, audit.err).toBe(0);
    const events = audit.out
      .trim()
      .split("\n")
      .map(
        (l) => JSON.parse(l) as { action: string; principal: string; client: string | null; project: string | null; run: string | null; path: string | null },
      );
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: "notify/add",
          principal: "admin",
          detail: expect.objectContaining({ name: "pager", events: ["decided", "expired"] }),
        }),
        expect.objectContaining({ action: "token/create", principal: "admin" }),
        expect.objectContaining({ action: "proposal", principal: "admin", project: "deadline", run: "late", path: forgotten }),
        expect.objectContaining({ action: "decision", principal: "alice", client: "spool-cli", project: "deadline", run: "late", path: decided }),
        expect.objectContaining({ action: "expired", principal: "deadline", client: null, project: "deadline", run: "late", path: forgotten }),
      ]),
    );
    const other = await s.spool(["audit", "--json", "--project", "elsewhere"]);
    expect(other.out).toBe("");
    const text = await s.spool(["audit", "--since", "1h"]);
    // The client's name is shown as the claim it is, beside the transport the server verified.
    expect(text.out).toMatch(/decision\s+alice over TCP, client claims "spool-cli" {2}deadline late log:\/\//);
  }, 90_000);
});
