import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliInProcess, runCliInProcess, startCliInProcess } from "../helpers/cli-in-process.js";
import { type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/**
 * Issue 38, point 3: what is typed to a command (its channel 0) is no output of it. `spool tail` and `attach`'s
 * replay print the command's stdout on stdout; `tail --input` shows the typing, labelled, in the order it happened;
 * the model reads it in that order.
 */
describe("typed input and a command's output", () => {
  let serve: ServeProcess;
  let env: NodeJS.ProcessEnv;
  let project: string;
  let act: CliInProcess;
  /** A command run in this process (helpers/cli-in-process.ts), as `act` is; `spool serve` is a process of its own. */
  const spool = (args: string[]) => runCliInProcess(args, env, project, 60_000);

  beforeAll(async () => {
    const base = tempDir("spool-typed-");
    const home = join(base, "home");
    project = join(base, "app");
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
    serve = await spawnServe(["--port", "0", "--home", home, "--demo-model"]);
    env = { SPOOL_HOME: home, SPOOL_SERVER: serve.url };
    act = startCliInProcess(["act", "Talk: `read a; echo got $a; read b; echo got $b`", "--model", "demo", "--yes"], env, { cwd: project });
    await act.waitFor(/running on/, "stdout", 60_000);
    const first = await spool(["input", "1", "1", "first"]);
    expect(first.code, first.err).toBe(0);
    // Not silent on success (issue 38, point 8).
    expect(first.out).toMatch(/^sent 6 bytes to log:\/\/turn_1\/sh\/\S+\n$/);
    await act.waitFor(/got first/, "stdout", 30_000);
    const second = await spool(["input", "1", "1", "second"]);
    expect(second.code, second.err).toBe(0);
    expect((await act.exitsWithin(60_000)).code, act.stderr()).toBe(0);
  }, 180_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("spool tail prints the command's stdout only", async () => {
    const tail = await spool(["tail", "1"]);
    expect(tail.code, tail.err).toBe(0);
    expect(tail.out).toBe("got first\ngot second\n");
  }, 60_000);

  it("spool tail --input shows what was typed, labelled, in the order it happened", async () => {
    const tail = await spool(["tail", "1", "--input"]);
    expect(tail.code, tail.err).toBe(0);
    expect(tail.out).toBe("[typed] first\ngot first\n[typed] second\ngot second\n");
    const refused = await spool(["tail", "1", "--input", "-f"]);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("--input");
  }, 60_000);

  it("spool attach's replay prints the command's stdout only", async () => {
    const attach = await spool(["attach", "1"]);
    expect(attach.code, attach.err).toBe(0);
    expect(attach.out).toBe("got first\ngot second\n");
  }, 60_000);

  it("words, not numbers or a doubled prefix: a finished command's input, a missing PROMPT", async () => {
    const late = await spool(["input", "1", "1", "late"]);
    expect(late.code).toBe(1);
    expect(late.err).toContain("has finished: done");
    expect(late.err).not.toMatch(/status \d{3}|\(\d{3}\)/);
    const bare = await spool(["act"]);
    expect(bare.code).toBe(2);
    expect(bare.err).toMatch(/^spool act needs a PROMPT/);
    const extra = await spool(["runs", "extra"]);
    expect(extra.err).toMatch(/^spool runs: unexpected argument "extra"/);
  }, 60_000);

  it("the model reads the typing and the output in order", () => {
    expect(act.stdout()).toContain("Its output ends with:\n  got first\n  [typed] second\n  got second");
  });
});
