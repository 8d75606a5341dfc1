import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { spawnCli } from "../helpers/process.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Issue 36 point 6: with run-N holding a reviewed proposal, another client makes a run named "N" with a decoy;
 * `spool approve N 1` used to take the decoy (the exact name won). A reference that is one run's number and
 * another's name names neither: asked on a terminal, an error without one.
 */
describe("a run reference that names two runs", () => {
  let ts: TestServer;
  let dir: string;
  let person: SpoolClient;
  let other: SpoolClient;
  let n: string;
  let reviewed: string;
  let decoy: string;
  const env = () => ({ SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: ts.server.config.tokenFile, SPOOL_HOME: ts.home, SPOOL_PROJECT: "" });
  const status = async (run: string, path: string) => (await person.call("entry/get", { run, path })).status;

  beforeAll(async () => {
    ts = await startTestServer();
    dir = join(tempDir("spool-refs-"), "proj");
    mkdirSync(join(dir, ".git"), { recursive: true });
    person = await ts.client();
    await person.initialize(undefined, { root: dir });
    const numbered = (await person.call("run/create", {})).run.alias;
    n = /^run-(\d+)$/.exec(numbered)![1]!;
    reviewed = (await person.call("proposal/create", { run: numbered, tool: "sh", command: "echo REVIEWED > reviewed.txt" })).path;
    other = await ts.client();
    await other.initialize(undefined, { root: dir });
    await other.call("run/create", { alias: n });
    decoy = (await other.call("proposal/create", { run: n, tool: "sh", command: "echo DECOY-RAN > decoy.txt" })).path;
  }, 60_000);
  afterAll(async () => {
    await ts?.stop();
  });

  it("without a terminal, approve N 1 is refused with both runs listed, and nothing is accepted", async () => {
    const approve = spawnCli(["approve", n, "1"], env(), { cwd: dir });
    expect(await approve.exit, approve.stderr()).toBe(2);
    expect(approve.stderr()).toContain(`"${n}" names 2 runs, so it names none`);
    expect(approve.stderr()).toMatch(new RegExp(`1  run-${n}  \\(run number ${n}\\)`));
    expect(approve.stderr()).toMatch(new RegExp(`2  ${n}  \\(named "${n}"\\)`));
    expect(approve.stdout()).not.toContain("accepted");
    expect(await status(`run-${n}`, reviewed)).toBe(ENTRY.proposed);
    expect(await status(n, decoy)).toBe(ENTRY.proposed);
    // Every command that takes RUN reads it the same way.
    const tail = spawnCli(["show", n], env(), { cwd: dir });
    expect(await tail.exit).toBe(2);
    expect(tail.stderr()).toContain("names 2 runs");
  }, 60_000);

  it("on a terminal, approve N 1 lists the candidates, takes the one picked, and shows its proposal before accepting it", async () => {
    const term = spoolInTerminal(["approve", n, "1"], { cwd: dir, env: env() });
    try {
      await term.waitFor("Which run?", "the question");
      const screen = await term.screen();
      expect(screen).toMatch(new RegExp(`1  run-${n}  \\(run number ${n}\\)`));
      expect(screen).toMatch(new RegExp(`2  ${n}  \\(named "${n}"\\)`));
      term.type("1");
      await term.waitFor("Accept this command?", "the confirmation");
      expect(await term.screen()).toContain("command     echo REVIEWED > reviewed.txt");
      term.type("y");
      expect(await term.exited).toBe(0);
      expect(await status(`run-${n}`, reviewed)).not.toBe(ENTRY.proposed);
      expect(await status(n, decoy)).toBe(ENTRY.proposed);
    } finally {
      term.kill();
    }
  }, 60_000);

  it("on a terminal, a key that picks neither changes nothing", async () => {
    const term = spoolInTerminal(["reject", n, "1"], { cwd: dir, env: env() });
    try {
      await term.waitFor("Which run?", "the question");
      term.type("x");
      expect(await term.exited).toBe(1);
      expect(await term.screen()).toContain(`no run chosen for "${n}": nothing done`);
      expect(await status(n, decoy)).toBe(ENTRY.proposed);
    } finally {
      term.kill();
    }
  }, 60_000);

  it("the whole name is exact: approve run-N 2 needs no terminal and no question", async () => {
    const second = (await person.call("proposal/create", { run: `run-${n}`, tool: "sh", command: "echo second" })).path;
    const approve = spawnCli(["approve", `run-${n}`, "2"], env(), { cwd: dir });
    expect(await approve.exit, approve.stderr()).toBe(0);
    expect(approve.stdout()).toContain(`accepted ${second}`);
    expect(await status(n, decoy)).toBe(ENTRY.proposed);
  }, 60_000);
});
