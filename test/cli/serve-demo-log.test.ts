import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startCliInProcess } from "../helpers/cli-in-process.js";
import { type ServeProcess, spawnCli, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/** A fresh home and a git project next to it, for `spool` commands run as a person would. */
function freshMachine() {
  const base = tempDir("spool-fresh-");
  const home = join(base, "home");
  const project = join(base, "app");
  mkdirSync(project);
  execFileSync("git", ["init", "-q", project]);
  writeFileSync(join(project, "notes.txt"), "one\ntwo\nthree\n");
  return { base, home, project };
}

/**
 * `spool serve --demo-model` on a fresh machine with SPOOL_LOG unset (the server's own default applies), started once
 * for the file: the demo model's test and the quiet terminal's use the same one (a `spool serve` costs ~2 s of CPU),
 * each running its own commands in it (in this process, helpers/cli-in-process.ts).
 */
let demo: Promise<ServeProcess & ReturnType<typeof freshMachine>> | null = null;
function demoServe() {
  demo ??= (async () => {
    const machine = freshMachine();
    const serve = await spawnServe(["--port", "0", "--home", machine.home, "--demo-model"], { SPOOL_LOG: "" });
    return { ...serve, ...machine };
  })();
  return demo;
}
afterAll(async () => {
  await (await demo)?.stop();
});

describe("spool serve --demo-model", () => {
  it("offers the built-in demo model as 'demo': it proposes the command the prompt names and answers from its output, with no key and no network", async () => {
    const serve = await demoServe();
    const { home, project } = serve;
    const env = { SPOOL_HOME: home, SPOOL_SERVER: serve.url, SPOOL_MODEL_DEMO: "" };
    expect(serve.output()).toContain("models:     demo (built-in demo)");
    const models = startCliInProcess(["models", "--project", "tour"], env, { cwd: project });
    expect((await models.exitsWithin(20_000)).code, models.stderr()).toBe(0);
    expect(models.stdout()).toMatch(/demo\s+demo\s+builtin/);
    const act = startCliInProcess(["act", "count the notes: `wc -l notes.txt`", "--model", "demo", "--yes"], env, { cwd: project });
    const { code } = await act.exitsWithin(30_000);
    expect(code, `${act.stdout()}\n${act.stderr()}`).toBe(0);
    expect(act.stdout()).toContain("▶ proposal wc -l notes.txt");
    expect(act.stdout()).toContain("3 notes.txt");
    expect(act.stdout()).toMatch(/finished: done, exit 0/);
    expect(act.stdout()).toContain("[demo model] `wc -l notes.txt` exited 0. Its output ends with:\n  3 notes.txt");
  }, 60_000);
});

describe("spool serve logging", () => {
  it("is quiet on its terminal by default: the address once, migrations counted in it, no info lines while commands run; --log-file keeps them, one line for the migrations", async () => {
    const serve = await demoServe();
    const { home, project } = serve;
    const logFile = join(tempDir(), "spool.log");
    expect(serve.output()).toMatch(/database: {3}\S+spool\.db \(\d+ migrations applied\)/);
    const act = startCliInProcess(["act", "`echo hello`", "--model", "demo", "--yes"], { SPOOL_HOME: home, SPOOL_SERVER: serve.url }, { cwd: project });
    expect((await act.exitsWithin(30_000)).code, act.stderr()).toBe(0);
    // The embedded runner attached and a command ran: nothing of it reaches the terminal the person types in.
    expect(serve.output()).not.toContain("[spool]");
    expect(serve.output()).not.toMatch(/migration \d+/);
    const second = freshMachine();
    const logged = await spawnServe(["--port", "0", "--home", second.home, "--demo-model", "--log-file", logFile], { SPOOL_LOG: "" });
    try {
      const act = startCliInProcess(
        ["act", "`echo hello`", "--model", "demo", "--yes"],
        { SPOOL_HOME: second.home, SPOOL_SERVER: logged.url },
        { cwd: second.project },
      );
      expect((await act.exitsWithin(30_000)).code, act.stderr()).toBe(0);
    } finally {
      await logged.stop();
    }
    const log = readFileSync(logFile, "utf8");
    expect(log.match(/migration/g)).toHaveLength(1);
    expect(log).toMatch(/info: database: applied \d+ migrations \(001\S* … \d+\S*\)/);
    expect(log).toMatch(/info: runner local \(local\) attached/);
    expect(logged.output()).not.toContain("[spool]");
  }, 60_000);

  it("a bad --log-level is a usage error (exit 2) naming the levels", async () => {
    // A process: `spool serve` first closes the descriptors its process inherited (here they would be the test's).
    const serve = spawnCli(["serve", "--port", "0", "--home", tempDir(), "--log-level", "loud"]);
    const { code } = await serve.exitsWithin(20_000);
    expect(code).toBe(2);
    expect(serve.stderr()).toContain('--log-level must be one of debug, info, warn, error, silent, got "loud"');
  });
});
