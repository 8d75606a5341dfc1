import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matchingRule, ruleFor, storeRule } from "../../src/core/allow-rules.js";
import type { ProposalFacts } from "../../src/protocol/views.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { createRepositories, type Repositories } from "../../src/store/repositories.js";
import { openStore, type Store } from "../../src/store/sqlite/database.js";
import { tempDir } from "../helpers/server.js";

/** The facts a person was shown for `sleep 1; echo ruled` on a workspace-write runner with a network of its own. */
const shown: ProposalFacts = {
  tool: "sh",
  command: "sleep 1; echo ruled",
  root: null,
  cwd: null,
  env: [],
  tty: null,
  runner: null,
  defaultRunner: "local",
  runnerClaim: null,
  background: false,
  timeoutMs: null,
  sandbox: { mode: "workspace-write" },
  network: "own",
};

/** A real SQLite store in a fresh home, migrated, with one run (r1) in project `name`; `close` closes and removes it. */
async function storeWithRun(name: string): Promise<{ repos: Repositories; runId: number; close(): Promise<void> }> {
  const home = tempDir();
  const store: Store = openStore(join(home, "spool.db"));
  const close = async () => {
    await store.close();
    rmSync(home, { recursive: true, force: true });
  };
  await migrateToLatest(store, MIGRATIONS_DIR);
  const repos = createRepositories(store);
  const project = await repos.projects.createProject(name, home);
  const now = Date.now();
  const runId = (await repos.runs.insertRun({ project_id: project.id, alias: "r1", model: null, mode: "act", status: 200, created_at: now, updated_at: now }))
    .id;
  return { repos, runId, close };
}

describe("an always-allow rule, in a real SQLite store", () => {
  let repos: Repositories;
  let runId: number;
  let close: () => Promise<void>;
  beforeAll(async () => ({ repos, runId, close } = await storeWithRun("rules")));
  afterAll(() => close());

  it("matches the proposal it was set on, and not one whose only difference is the command's network", async () => {
    const rule = await storeRule(repos, { runId, facts: shown, runner: "local" }, "admin via test");
    expect((await matchingRule(repos, { runId, facts: { ...shown }, runner: "local" }))?.id).toBe(rule.id);
    // The same command where it would share the host's network (or have none): a proposal nobody decided on.
    for (const network of ["shared", "none"] as const) {
      expect(await matchingRule(repos, { runId, facts: { ...shown, network }, runner: "local" })).toBeUndefined();
    }
    // A proposal from before the fact (no network recorded) is not the one decided on either.
    expect(await matchingRule(repos, { runId, facts: { ...shown, network: null }, runner: "local" })).toBeUndefined();
  });

  it("holds what the sandboxed command saw: a view with another path added, or another toolchain, is asked about", async () => {
    const view = { system: ["/usr", "/etc"], image: null, home: "/home/ci", toolchains: ["/home/ci/.cargo/bin"], read: [], write: [] };
    const seen = { ...shown, command: "cargo test", sandbox: { mode: "workspace-write" as const, view } };
    const rule = await storeRule(repos, { runId, facts: seen, runner: "local" }, "admin via test");
    expect((await matchingRule(repos, { runId, facts: seen, runner: "local" }))?.id).toBe(rule.id);
    const wider = { ...seen, sandbox: { mode: "workspace-write" as const, view: { ...view, write: ["/home/ci/.cargo/registry"] } } };
    expect(await ruleFor(repos, { runId, facts: wider, runner: "local" })).toMatchObject({ near: { rule, differs: [expect.stringMatching(/^view: /)] } });
    const other = { ...seen, sandbox: { mode: "workspace-write" as const, view: { ...view, toolchains: ["/home/ci/.cargo/bin", "/opt/evil"] } } };
    expect(await matchingRule(repos, { runId, facts: other, runner: "local" })).toBeUndefined();
  });
});

describe("a proposal a rule does not match, though the rule holds its command", () => {
  let repos: Repositories;
  let runId: number;
  let close: () => Promise<void>;
  beforeAll(async () => ({ repos, runId, close } = await storeWithRun("near")));
  afterAll(() => close());

  it("names the facts that differ: the network a restarted runner gives, the cwd, the runner", async () => {
    const rule = await storeRule(repos, { runId, facts: shown, runner: "local" }, "admin via test");
    expect(await ruleFor(repos, { runId, facts: shown, runner: "local" })).toEqual({ rule });
    expect(await ruleFor(repos, { runId, facts: { ...shown, network: "shared" }, runner: "local" })).toEqual({
      near: { rule, differs: ['network: "own" → "shared"'] },
    });
    expect((await ruleFor(repos, { runId, facts: { ...shown, cwd: "sub", network: null }, runner: "box" })).near?.differs).toEqual([
      'cwd: "" → "sub"',
      'runner: "local" → "box"',
      'network: "own" → null',
    ]);
    // Another command: no rule holds it, nothing near.
    expect(await ruleFor(repos, { runId, facts: { ...shown, command: "echo other" }, runner: "local" })).toEqual({});
  });

  it("of two rules for the command, the nearer one is named", async () => {
    const far = await storeRule(repos, { runId, facts: { ...shown, command: "make", tty: { cols: 80, rows: 24 }, background: true }, runner: "local" }, "a");
    const close = await storeRule(repos, { runId, facts: { ...shown, command: "make", background: true }, runner: "local" }, "b");
    const found = await ruleFor(repos, { runId, facts: { ...shown, command: "make" }, runner: "local" });
    expect(found.near).toEqual({ rule: close, differs: ["background: true → false"] });
    expect(far.id).not.toBe(close.id);
  });
});
