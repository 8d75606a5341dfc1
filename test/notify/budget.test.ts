import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SCHEMA_MIGRATIONS } from "../../migrations/index.js";
import { RUN } from "../../src/protocol/status.js";
import { type MigrationSet, migrateToLatest } from "../../src/store/migrator.js";
import { openStore } from "../../src/store/sqlite/database.js";
import { runCli } from "../helpers/process.js";
import { type Receiver, signedBy, startReceiver } from "../helpers/receiver.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

// A run paused at its budget waits for a person as a proposal does: receivers of notifications are told, in each
// format, which budget was reached and how to raise it.

const receivers: Receiver[] = [];
let model: ScriptedModel | undefined;
let ts: TestServer | undefined;
afterAll(async () => {
  await ts?.stop();
  await model?.close();
  for (const r of receivers) await r.close();
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

describe("a budget event", () => {
  it("reaches json, slack and ntfy receivers once the run pauses: which budget, the command that raises it, a link to the run; it raises it", async () => {
    model = await ScriptedModel.start();
    const usage = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };
    model.reply(
      { text: "Reading.", tools: [{ id: "get_1", name: "get", arguments: { path: "sh://turn_1/x" } }], usage },
      { tools: [{ id: "done_1", name: "done", arguments: { summary: "read" } }], usage },
    );
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl } });
    const [hook, slack, ntfy, proposalsOnly] = [await receiver(), await receiver(), await receiver(), await receiver()];
    const a = await ts.clientIn("budgeted");
    const add = (name: string, url: string, more: object = {}) => a.call("notify/add", { name, url, ...more });
    const { secret } = await add("hook", hook.url);
    await add("slack", slack.url, { format: "slack" });
    await add("phone", ntfy.url, { format: "ntfy" });
    await add("proposals", proposalsOnly.url, { events: ["proposal"] });
    expect((await a.call("notify/list", {})).targets.find((t) => t.name === "hook")!.events).toEqual(["proposal", "decided", "finished", "expired", "budget"]);

    await a.call("run/create", { alias: "b1", model: "test", prompt: "Read it", budget: { tokens: 100 } });
    const [got] = await hook.waitFor(1, 20_000);
    expect((await a.call("run/get", { run: "b1" })).run.status).toBe(RUN.paused);
    expect(got!.headers["x-spool-event"]).toBe("budget");
    expect(signedBy(got!.body, got!.headers["x-spool-signature"], secret)).toBe(true);
    const body = JSON.parse(got!.body) as Record<string, unknown> & { text: string; budget: { raise: string } };
    const link = `${ts.server.url.replace(/^ws/, "http").replace(/\/$/, "")}/#/budgeted/b1`;
    expect(body).toMatchObject({
      event: "budget",
      project: "budgeted",
      run: "b1",
      path: null,
      facts: null,
      decision: null,
      finished: null,
      budget: { kind: "tokens", limit: 100, used: 120, raise: "spool budget b1 +10k" },
    });
    expect(body.url).toBe(link);
    expect(body.text.split("\n")).toEqual([
      "Spool: a run paused at its budget in budgeted/b1",
      "  its token budget of 100 tokens was reached (120 tokens used)",
      "  no model call or command until it is raised: spool budget b1 +10k",
      "  or stopped: spool abort b1",
      link,
    ]);

    const [toSlack] = await slack.waitFor(1);
    const text = (JSON.parse(toSlack!.body) as { text: string }).text;
    expect(text.startsWith("*Spool: a run paused at its budget in budgeted/b1*\n```\nits token budget of 100 tokens was reached")).toBe(true);
    expect(text.endsWith(`<${link}|Open in Spool>`)).toBe(true);
    const [toNtfy] = await ntfy.waitFor(1);
    expect(toNtfy!.headers).toMatchObject({ title: "Spool: a run paused at its budget in budgeted/b1", tags: "spool,budget", priority: "high", click: link });
    expect(toNtfy!.body).toContain("spool budget b1 +10k");
    // A receiver of proposals alone was not told.
    expect(proposalsOnly.received).toHaveLength(0);

    // The command it gives raises the budget, and the run ends.
    const raised = await runCli([...body.budget.raise.split(" ").slice(1), "--project", "budgeted"], { SPOOL_HOME: ts.home }, ts.root, 30_000);
    expect(raised.err).toBe("");
    await eventually(async () => (await a.call("run/get", { run: "b1" })).run.status === RUN.done, 20_000, "the run to end");
    expect(model.requests).toHaveLength(2);
  }, 90_000);

  it("migration 023 gives it to receivers that took every event, not to one that chose fewer", async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    const before: MigrationSet = Object.fromEntries(Object.entries(SCHEMA_MIGRATIONS).filter(([name]) => name < "023"));
    await migrateToLatest(store, before);
    const insert = store.sqlite.prepare(
      "INSERT INTO notify_targets (name, url, secret, events, format, projects, created_by, created_at) VALUES (?, 'http://127.0.0.1:9/', 's', ?, 'json', NULL, 'admin', 0)",
    );
    insert.run("all", JSON.stringify(["proposal", "decided", "finished", "expired"]));
    insert.run("some", JSON.stringify(["proposal", "finished"]));
    await migrateToLatest(store, SCHEMA_MIGRATIONS);
    const events = Object.fromEntries(
      (store.sqlite.prepare("SELECT name, events FROM notify_targets").all() as { name: string; events: string }[]).map((r) => [r.name, JSON.parse(r.events)]),
    );
    expect(events).toEqual({ all: ["proposal", "decided", "finished", "expired", "budget"], some: ["proposal", "finished"] });
    await store.close();
  });
});
