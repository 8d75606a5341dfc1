import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SoloBus } from "../../src/cluster/bus.js";
import { loadConfig } from "../../src/config.js";
import { type Core, createCore } from "../../src/core/index.js";
import { createLogger } from "../../src/logger.js";
import type { ConnectionHandle, ProjectRef } from "../../src/rpc/connection-context.js";
import { SpoolError } from "../../src/rpc/errors.js";
import { MIGRATIONS_DIR } from "../../src/server.js";
import { openStore, type Store } from "../../src/store/database.js";
import { migrateToLatest } from "../../src/store/migrator.js";
import { createRepositories } from "../../src/store/repositories.js";
import { tempDir } from "../helpers/server.js";

/** A connection as the core sees it; the core only compares identities and reads the client name. */
function connection(id: string): ConnectionHandle {
  return {
    id,
    project: null,
    clientInfo: { name: id, version: "1" },
    state: new Map(),
    join() {},
    notify() {},
    request: () => Promise.reject(new Error("not a runner")),
    bufferedAmount: () => 0,
    onClose() {},
    close() {},
    closed: false,
  };
}

type State = "proposed" | "streaming" | "done" | "failed" | "cancelled" | "rejected";
type Op =
  | "accept"
  | "reject"
  | "start"
  | "append"
  | "append by another"
  | "complete"
  | "complete by another"
  | "abort"
  | "cancel"
  | "lose"
  | "claim"
  | "claim with a wrong token";

/**
 * What each operation does from each state: the state afterwards (the same
 * state when nothing changes) or the error code. Every cell is checked, with
 * what was announced and hooked.
 */
const TABLE: Record<State, Record<Op, State | `!${string}`>> = {
  proposed: {
    accept: "streaming",
    reject: "rejected",
    start: "proposed",
    append: "!NOT_FOUND",
    "append by another": "!NOT_FOUND",
    complete: "!CONFLICT",
    "complete by another": "!CONFLICT",
    abort: "!CONFLICT",
    cancel: "!CONFLICT",
    lose: "!CONFLICT",
    claim: "!NOT_OWNER",
    "claim with a wrong token": "!NOT_OWNER",
  },
  streaming: {
    accept: "!CONFLICT",
    reject: "!CONFLICT",
    start: "streaming",
    append: "streaming",
    "append by another": "!NOT_OWNER",
    complete: "done",
    "complete by another": "!NOT_OWNER",
    abort: "cancelled",
    cancel: "cancelled",
    lose: "cancelled",
    claim: "streaming",
    "claim with a wrong token": "!NOT_OWNER",
  },
  done: {
    accept: "!CONFLICT",
    reject: "!CONFLICT",
    start: "done",
    append: "!STREAM_CLOSED",
    "append by another": "!STREAM_CLOSED",
    complete: "done",
    "complete by another": "done",
    abort: "done",
    cancel: "done",
    lose: "done",
    claim: "done",
    "claim with a wrong token": "!NOT_OWNER",
  },
  failed: {
    accept: "!CONFLICT",
    reject: "!CONFLICT",
    start: "failed",
    append: "!STREAM_CLOSED",
    "append by another": "!STREAM_CLOSED",
    complete: "failed",
    "complete by another": "failed",
    abort: "failed",
    cancel: "failed",
    lose: "failed",
    claim: "failed",
    "claim with a wrong token": "!NOT_OWNER",
  },
  cancelled: {
    accept: "!CONFLICT",
    reject: "!CONFLICT",
    start: "cancelled",
    append: "!STREAM_CLOSED",
    "append by another": "!STREAM_CLOSED",
    complete: "cancelled",
    "complete by another": "cancelled",
    abort: "cancelled",
    cancel: "cancelled",
    lose: "cancelled",
    claim: "cancelled",
    "claim with a wrong token": "!NOT_OWNER",
  },
  rejected: {
    accept: "!CONFLICT",
    reject: "!CONFLICT",
    start: "rejected",
    append: "!NOT_FOUND",
    "append by another": "!NOT_FOUND",
    complete: "!CONFLICT",
    "complete by another": "!CONFLICT",
    abort: "!CONFLICT",
    cancel: "!CONFLICT",
    lose: "!CONFLICT",
    claim: "!NOT_OWNER",
    "claim with a wrong token": "!NOT_OWNER",
  },
};

/** The (log, channel) statuses that make each state. */
const STATUSES: Record<State, [number, number | null]> = {
  proposed: [202, null],
  streaming: [200, 102],
  done: [200, 200],
  failed: [200, 500],
  cancelled: [200, 499],
  rejected: [403, null],
};

/** What a change of state announces to the project and hooks, exactly once each. */
function expectedEvents(from: State, op: Op, to: State): { notices: string[]; hooks: string[] } {
  if (op === "start" && from === "streaming") return { notices: ["stream/started"], hooks: ["producer:started"] };
  if (from === to) return { notices: [], hooks: [] };
  if (op === "accept" || op === "reject") return { notices: ["run/resolved"], hooks: ["entry:status"] };
  const finished = op === "cancel" ? ["stream/cancelled", "stream/finished"] : ["stream/finished"];
  return { notices: finished.sort(), hooks: ["entry:status", "entry:status"] };
}

describe("the producer lifecycle, every operation from every state", () => {
  let home: string;
  let store: Store;
  let core: Core;
  let project: ProjectRef;
  const notices: string[] = [];
  const hooks: string[] = [];
  const owner = connection("owner");
  const other = connection("other");
  let counter = 0;

  beforeAll(async () => {
    home = tempDir();
    store = openStore(join(home, "spool.db"));
    await migrateToLatest(store, MIGRATIONS_DIR);
    core = createCore({
      repos: createRepositories(store),
      config: loadConfig({ home, runnerGraceMs: 60_000 }, {}),
      log: createLogger("silent"),
      notifyProject: (_id, method) => void notices.push(method),
      notifyLocal: () => undefined,
      bus: new SoloBus(1),
      emit: async (hook) => void hooks.push(hook),
      applyFilter: async (_name, value) => value,
    });
    core.producers.register({ tool: "sh", description: "test", channels: { 1: "stdout", 2: "stderr" }, readOnly: false });
    const row = await core.repos.projects.createProject("table", home);
    project = { id: row.id, name: row.name, root: row.root };
  });
  afterAll(async () => {
    await core.lifecycle.stop();
    await store.close();
    rmSync(home, { recursive: true, force: true });
  });

  /** A fresh producer in `state`, in its own run; returns what the operations need. */
  async function producerIn(state: State) {
    const run = await core.runs.create(project, { alias: `r${++counter}`, model: null, mode: "act" });
    const log = await core.lifecycle.propose(project, run, { tool: "sh", command: `cmd ${counter}`, proposedBy: "test" });
    const target = { run: run.alias, path: log.path };
    let token = "a-token-that-was-never-issued";
    if (state === "rejected") await core.lifecycle.reject(project, target, { by: "test" });
    if (!["proposed", "rejected"].includes(state)) token = (await core.lifecycle.accept(owner, project, target, { runner: "self" })).resumeToken!;
    if (state === "done" || state === "failed")
      await core.lifecycle.finishByOwner(owner, project, target, { kind: "completed", exit_code: state === "done" ? 0 : 1 });
    if (state === "cancelled") await core.lifecycle.cancel(project, target, "test");
    return { run, log, target, token };
  }

  async function stateOf(runId: number, path: string): Promise<State> {
    const log = (await core.repos.entries.findEntry(runId, path))!;
    const channel = (await core.repos.entries.listChannels(log.id))[0];
    const key: [number, number | null] = [log.status, channel?.status ?? null];
    return (Object.entries(STATUSES).find(([, s]) => s[0] === key[0] && s[1] === key[1])?.[0] ?? `unknown ${key}`) as State;
  }

  for (const [from, row] of Object.entries(TABLE) as [State, Record<Op, string>][]) {
    for (const [op, expected] of Object.entries(row) as [Op, string][]) {
      it(`${from} · ${op} → ${expected.startsWith("!") ? expected.slice(1) : expected}`, async () => {
        const p = await producerIn(from);
        notices.length = 0;
        hooks.length = 0;
        const lc = core.lifecycle;
        const act = async () => {
          switch (op) {
            case "accept":
              return lc.accept(owner, project, p.target, { runner: "self" });
            case "reject":
              return lc.reject(project, p.target, { by: "test" });
            case "start":
              return lc.start(project, p.run, p.log, "self", { backend: "local", pid: 1 });
            case "append":
            case "append by another":
              return lc.append(op === "append" ? owner : other, project, { ...p.target, channel: 1, data: Buffer.from("x"), seq: 1 });
            case "complete":
            case "complete by another":
              return lc.finishByOwner(op === "complete" ? owner : other, project, p.target, { kind: "completed", exit_code: 0 });
            case "abort":
              return lc.finishByOwner(owner, project, p.target, { kind: "aborted", reason: "test" });
            case "cancel":
              return lc.cancel(project, p.target, "test");
            case "lose":
              return lc.lose(p.log.id, "owner lost");
            case "claim":
              return lc.claim(other, project, p.target, p.token);
            case "claim with a wrong token":
              return lc.claim(other, project, p.target, "not-the-token-at-all-0123456789");
          }
        };
        if (expected.startsWith("!")) {
          const error = await act().then(
            () => null,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(SpoolError);
          expect((error as SpoolError).errorName).toBe(expected.slice(1));
          expect(await stateOf(p.run.id, p.log.path)).toBe(from);
          expect({ notices, hooks }).toEqual({ notices: [], hooks: [] });
          return;
        }
        await act();
        expect(await stateOf(p.run.id, p.log.path)).toBe(expected);
        expect({ notices: [...notices].sort(), hooks }).toEqual(expectedEvents(from, op, expected as State));
      });
    }
  }

  it("after a claim the new connection owns the producer and the old one does not", async () => {
    const p = await producerIn("streaming");
    await core.lifecycle.claim(other, project, p.target, p.token);
    await expect(core.lifecycle.append(owner, project, { ...p.target, channel: 1, data: Buffer.from("x") })).rejects.toMatchObject({ errorName: "NOT_OWNER" });
    await expect(core.lifecycle.append(other, project, { ...p.target, channel: 1, data: Buffer.from("x") })).resolves.toMatchObject({ seq: 1 });
  });
});
