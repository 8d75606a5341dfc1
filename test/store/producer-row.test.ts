import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SoloBus } from "../../src/cluster/bus.js";
import { loadConfig } from "../../src/config/config.js";
import { type Core, createCore } from "../../src/core/index.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY } from "../../src/protocol/status.js";
import { type ConnectionHandle, HOME_PRINCIPAL, type ProjectRef } from "../../src/rpc/connection-context.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { channelFromRow, producerFromRow } from "../../src/store/producer-row.js";
import { createRepositories } from "../../src/store/repositories.js";
import { openStore, type Store } from "../../src/store/sqlite/database.js";
import { tempDir } from "../helpers/server.js";

const client: ConnectionHandle = {
  id: "c1",
  project: null,
  clientInfo: { name: "tester", version: "1" },
  via: "in-process",
  principal: HOME_PRINCIPAL,
  state: new Map(),
  join() {},
  notify() {},
  request: () => Promise.reject(new Error("not a runner")),
  bufferedAmount: () => 0,
  onClose() {},
  close() {},
  closed: false,
};

describe("a producer's rows as typed objects", () => {
  let home: string;
  let store: Store;
  let core: Core;
  let project: ProjectRef;
  let counter = 0;

  beforeAll(async () => {
    home = tempDir();
    store = openStore(join(home, "spool.db"));
    await migrateToLatest(store, MIGRATIONS_DIR);
    core = createCore({
      repos: createRepositories(store),
      config: loadConfig({ home, sandbox: "workspace-write" }, {}),
      log: createLogger("silent"),
      notifyProject: () => undefined,
      notifyLocal: () => undefined,
      bus: new SoloBus(1),
      emit: async () => undefined,
      applyFilter: async (_name, value) => value,
    });
    core.producers.register({ tool: "sh", description: "test", channels: { 1: "stdout", 2: "stderr" }, readOnly: false });
    const row = await core.repos.projects.createProject("rows", home);
    project = { id: row.id, name: row.name, root: row.root };
  });
  afterAll(async () => {
    await core.lifecycle.stop();
    await store.close();
    rmSync(home, { recursive: true, force: true });
  });

  async function propose(input: Partial<Parameters<Core["lifecycle"]["propose"]>[2]> = {}) {
    const run = await core.runs.create(project, { alias: `r${++counter}`, model: null, mode: "act" });
    const log = await core.lifecycle.propose(project, run, { tool: "sh", command: "make test", proposedBy: "tester", ...input });
    return { run, log, target: { run: run.alias, path: log.path } };
  }
  const reread = async (runId: number, path: string) => (await core.repos.entries.findEntry(runId, path))!;

  it("reads a proposal's facts into named fields, and leaves what Spool does not name in extra", async () => {
    const { run, log } = await propose({
      cwd: ".",
      env: { A: "1" },
      tty: { cols: 80, rows: 24 },
      background: true,
      timeout_ms: 5000,
      extra: { loop: 3, toolCallId: "call-1", plugin: "mine" },
    });
    expect(producerFromRow(log)).toMatchObject({
      id: log.id,
      path: `log://turn_${run.turn}/sh/make-test`,
      status: ENTRY.proposed,
      tool: "sh",
      command: "make test",
      cwd: "",
      env: { A: "1" },
      tty: { cols: 80, rows: 24 },
      background: true,
      timeoutMs: 5000,
      slug: "make-test",
      sandbox: "workspace-write",
      readOnly: false,
      proposedBy: "tester",
      loop: 3,
      toolCallId: "call-1",
      decision: null,
      runner: null,
      ownerKey: null,
      outcome: null,
      exitCode: null,
      modelSeen: {},
      extra: { plugin: "mine" },
    });
  });

  it("reads the decision, the owner's key and how it ended from the log, and the same ending from each channel", async () => {
    const { run, log, target } = await propose({ sandbox: "full" });
    await core.lifecycle.accept(client, project, target, { runner: "self", reason: "looks fine" });
    await core.lifecycle.finishByOwner(client, project, target, { kind: "completed", exit_code: 3, duration: 42 });
    const producer = producerFromRow(await reread(run.id, log.path));
    expect(producer).toMatchObject({ status: ENTRY.done, decision: "accept", runner: "self", resolvedBy: "admin via tester", reason: "looks fine" });
    expect(producer).toMatchObject({ outcome: "completed", exitCode: 3, signal: null, durationMs: 42, cancelledBy: null });
    expect(producer.ownerKey).toMatch(/\S/);
    const channels = (await core.repos.entries.listChannels(log.id)).map(channelFromRow);
    expect(channels.map((c) => [c.channel, c.name, c.status, c.outcome, c.exitCode, c.eofAt])).toEqual([
      [1, "stdout", 500, "completed", 3, null],
      [2, "stderr", 500, "completed", 3, null],
    ]);
  });

  it("reads who cancelled it and why, and a rejection's reason", async () => {
    const cancelled = await propose({ sandbox: "full" });
    await core.lifecycle.accept(client, project, cancelled.target, { runner: "self" });
    await core.lifecycle.cancel(project, cancelled.target, "too slow", "someone");
    expect(producerFromRow(await reread(cancelled.run.id, cancelled.log.path))).toMatchObject({
      outcome: "cancelled",
      reason: "too slow",
      cancelledBy: "someone",
    });
    const rejected = await propose();
    await core.lifecycle.reject(project, rejected.target, { by: "tester", reason: "no" });
    expect(producerFromRow(await reread(rejected.run.id, rejected.log.path))).toMatchObject({ status: ENTRY.rejected, decision: "reject", reason: "no" });
  });

  it("refuses a sandbox mode this server does not know, naming it, rather than running it in another", async () => {
    const { log } = await propose();
    const row = { ...log, attributes: JSON.stringify({ ...JSON.parse(log.attributes), sandbox: "moonbase" }) };
    expect(() => producerFromRow(row)).toThrow(/sandbox mode "moonbase".*does not know/);
  });
});
