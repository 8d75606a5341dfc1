import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SoloBus } from "../../src/cluster/bus.js";
import { loadConfig } from "../../src/config/config.js";
import { type Core, createCore } from "../../src/core/index.js";
import {
  type Caller,
  OPERATIONS,
  type Operation,
  STATE_STATUSES,
  stateOf,
  TRANSITIONS,
  type TransitionState,
  transition,
} from "../../src/core/lifecycle/transitions.js";
import { createLogger } from "../../src/logger.js";
import { type ConnectionHandle, HOME_PRINCIPAL, type ProjectRef } from "../../src/rpc/connection-context.js";
import { SpoolError } from "../../src/rpc/errors.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { createRepositories } from "../../src/store/repositories.js";
import { openStore, type Store } from "../../src/store/sqlite/database.js";
import { tempDir } from "../helpers/server.js";

/** A connection as the core sees it; the core only compares identities and reads the client name. */
function connection(id: string): ConnectionHandle {
  return {
    id,
    project: null,
    clientInfo: { name: id, version: "1" },
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
}

/** The table's operations as the test calls them: by the owner, and (where the table tells callers apart) by another. */
const CALLS = (Object.keys(OPERATIONS) as Operation[]).flatMap((operation) =>
  (["owner", "other"] as Caller[])
    .filter((caller) => caller === "owner" || Object.values(TRANSITIONS).some((row) => "owner" in row[operation]))
    .map((caller) => ({
      operation,
      caller,
      name: caller === "owner" ? operation : operation === "claim" ? "claim with a wrong token" : `${operation} by another`,
    })),
);

/** The state an operation leads to; `complete` runs with exit 0 here, which picks the first of its two. */
const target = (to: TransitionState | readonly TransitionState[]): TransitionState => (typeof to === "string" ? to : to[0]!);

describe("the transition table", () => {
  it("has a cell for every operation from every state", () => {
    for (const state of Object.keys(STATE_STATUSES) as TransitionState[]) {
      expect(Object.keys(TRANSITIONS[state]).sort()).toEqual(Object.keys(OPERATIONS).sort());
    }
  });

  it("refuses every owner-only operation on a running producer to anybody else", () => {
    for (const [operation, { by }] of Object.entries(OPERATIONS) as [Operation, { by: string }][]) {
      const other = transition("streaming", operation, "other");
      if (by === "owner") expect(other).toEqual({ error: "NOT_OWNER" });
      else expect(other).toEqual(transition("streaming", operation, "owner"));
    }
  });

  it("reads each state back from its statuses, and refuses a combination no operation makes", () => {
    for (const [state, [log, channel]] of Object.entries(STATE_STATUSES)) expect(stateOf(log, channel === null ? [] : [channel])).toBe(state);
    expect(stateOf(200, [200, 102])).toBe("streaming");
    expect(() => stateOf(202, [102])).toThrow(/no known state/);
  });
});

describe("the producer lifecycle, every operation from every state", () => {
  let home: string;
  let store: Store;
  let core: Core;
  let project: ProjectRef;
  const notices: string[] = [];
  const hooks: string[] = [];
  const owner = connection("owner");
  const other = connection("other");
  // A runner whose runner/exec never answers: a command it takes stays streaming, owned by it.
  const taker = { ...connection("taker"), request: () => new Promise<never>(() => {}) };
  let counter = 0;

  beforeAll(async () => {
    home = tempDir();
    store = openStore(join(home, "spool.db"));
    await migrateToLatest(store, MIGRATIONS_DIR);
    core = createCore({
      repos: createRepositories(store),
      config: loadConfig({ home, runnerGraceMs: 60_000, pools: { q: { labels: { q: "1" }, principals: [HOME_PRINCIPAL.name] } } }, {}),
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
    // The pool's one runner drains: an accept for the pool queues, and only `take` below gives it a command.
    await core.lifecycle.attachRunner(taker, project, { name: "taker", backend: "local", labels: { q: "1" }, capacity: 1 });
    await core.lifecycle.drain(project, "taker", true, HOME_PRINCIPAL);
  });
  afterAll(async () => {
    await core.lifecycle.stop();
    await store.close();
    rmSync(home, { recursive: true, force: true });
  });

  /** A fresh producer in `state`, in its own run; returns what the operations need. */
  async function producerIn(state: TransitionState) {
    const run = await core.runs.create(project, { alias: `r${++counter}`, model: null, mode: "act" });
    const log = await core.lifecycle.propose(project, run, { tool: "sh", command: `cmd ${counter}`, sandbox: "full", proposedBy: "test" });
    const target = { run: run.alias, path: log.path };
    let token = "a-token-that-was-never-issued";
    if (state === "rejected") await core.lifecycle.reject(project, target, { by: "test" });
    if (state === "queued") await core.lifecycle.accept(owner, project, target, { runner: { pool: "q" } });
    else if (!["proposed", "rejected"].includes(state)) token = (await core.lifecycle.accept(owner, project, target, { runner: "self" })).resumeToken!;
    if (state === "done" || state === "failed")
      await core.lifecycle.finishByOwner(owner, project, target, { kind: "completed", exit_code: state === "done" ? 0 : 1 });
    if (state === "cancelled") await core.lifecycle.cancel(project, target, "test");
    return { run, log, target, token };
  }

  /** The producer's state as the table's statuses name it, read from the database. */
  async function stateIn(runId: number, path: string): Promise<TransitionState | string> {
    const log = (await core.repos.entries.findEntry(runId, path))!;
    const channel = (await core.repos.entries.listChannels(log.id))[0];
    const key: [number, number | null] = [log.status, channel?.status ?? null];
    return Object.entries(STATE_STATUSES).find(([, s]) => s[0] === key[0] && s[1] === key[1])?.[0] ?? `unknown ${key}`;
  }

  for (const from of Object.keys(TRANSITIONS) as TransitionState[]) {
    for (const { operation, caller, name } of CALLS) {
      const cell = transition(from, operation, caller);
      it(`${from} · ${name} → ${"error" in cell ? cell.error : target(cell.to)}`, async () => {
        const p = await producerIn(from);
        notices.length = 0;
        hooks.length = 0;
        const lc = core.lifecycle;
        const by = caller === "owner" ? owner : other;
        const act = async () => {
          switch (operation) {
            case "accept":
              return lc.accept(owner, project, p.target, { runner: "self" });
            case "reject":
              return lc.reject(project, p.target, { by: "test" });
            case "take":
              return lc.take(core.runners.get(project.id, "taker")!, p.log);
            case "start":
              return lc.start(project, p.run, p.log, "self", { backend: "local", pid: 1 });
            case "append":
              return lc.append(by, project, { ...p.target, channel: 1, data: Buffer.from("x"), seq: 1 });
            case "complete":
              return lc.finishByOwner(by, project, p.target, { kind: "completed", exit_code: 0 });
            case "abort":
              return lc.finishByOwner(by, project, p.target, { kind: "aborted", reason: "test" });
            case "cancel":
              return lc.cancel(project, p.target, "test");
            case "lose":
              return lc.lose(p.log.id, "owner lost");
            case "claim":
              // The claim comes from a new connection; "other" shows a token that was never issued.
              return lc.claim(other, project, p.target, caller === "owner" ? p.token : "not-the-token-at-all-0123456789");
          }
        };
        if ("error" in cell) {
          const error = await act().then(
            () => null,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(SpoolError);
          expect((error as SpoolError).errorName).toBe(cell.error);
          expect(await stateIn(p.run.id, p.log.path)).toBe(from);
          expect({ notices, hooks }).toEqual({ notices: [], hooks: [] });
          return;
        }
        await act();
        expect(await stateIn(p.run.id, p.log.path)).toBe(target(cell.to));
        expect({ notices: [...notices].sort(), hooks }).toEqual({ notices: [...cell.notices].sort(), hooks: [...cell.hooks] });
      });
    }
  }

  it("a complete with a non-zero exit leads to the second state the table lists", async () => {
    const p = await producerIn("streaming");
    await core.lifecycle.finishByOwner(owner, project, p.target, { kind: "completed", exit_code: 3 });
    const cell = transition("streaming", "complete", "owner");
    expect("to" in cell && typeof cell.to !== "string" ? cell.to[1] : null).toBe(await stateIn(p.run.id, p.log.path));
  });

  it("an accept for a pool with no free runner leads to the second state the table lists, and a take then owns it", async () => {
    const p = await producerIn("proposed");
    const cell = transition("proposed", "accept", "owner");
    await core.lifecycle.accept(owner, project, p.target, { runner: { pool: "q" } });
    expect("to" in cell && typeof cell.to !== "string" ? cell.to[1] : null).toBe(await stateIn(p.run.id, p.log.path));
    const runner = core.runners.get(project.id, "taker")!;
    expect(await core.lifecycle.take(runner, p.log)).toBe(true);
    expect(await stateIn(p.run.id, p.log.path)).toBe("streaming");
    expect(core.lifecycle.ownerOf(p.log.id)?.connection).toBe(taker);
    // Taken once: a second take of the same command is refused by the table.
    await expect(core.lifecycle.take(runner, p.log)).rejects.toMatchObject({ errorName: "CONFLICT" });
  });

  it("after a claim the new connection owns the producer and the old one does not", async () => {
    const p = await producerIn("streaming");
    await core.lifecycle.claim(other, project, p.target, p.token);
    await expect(core.lifecycle.append(owner, project, { ...p.target, channel: 1, data: Buffer.from("x") })).rejects.toMatchObject({ errorName: "NOT_OWNER" });
    await expect(core.lifecycle.append(other, project, { ...p.target, channel: 1, data: Buffer.from("x") })).resolves.toMatchObject({ seq: 1 });
  });
});
