import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, runCli, type ServeProcess, SPOOL_BIN, spawnCli, spawnRunner, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/** A project directory (a git repository) in a fresh place. */
function gitProject(name: string): string {
  const dir = join(tempDir("spool-everyday-"), name);
  mkdirSync(dir);
  execFileSync("git", ["init", "-q", dir]);
  writeFileSync(join(dir, "notes.txt"), "one\ntwo\nthree\n");
  return dir;
}

/**
 * The CLI as people use it every day (issue 26): settings from config.json, server-wide reads without a project,
 * words instead of status numbers, short references, the missing commands, and the small things.
 */
describe("spool, every day", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  /** Only SPOOL_HOME: everything else comes from the home, as for a person. */
  let env: NodeJS.ProcessEnv;
  const spool = (args: string[], cwd = app, extra: NodeJS.ProcessEnv = {}) => runCli(args, { ...env, ...extra }, cwd, 30_000);
  beforeAll(async () => {
    home = tempDir("spool-home-");
    const port = await freePort();
    // The port only in config.json: every command must find the server there.
    writeFileSync(join(home, "config.json"), JSON.stringify({ port, demoModel: true }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    expect(serve.url).toBe(`ws://127.0.0.1:${port}/`);
    env = { SPOOL_HOME: home };
    app = gitProject("app");
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("reads the server's port from $SPOOL_HOME/config.json; server-wide reads need no project; a new project lists nothing, without an error", async () => {
    const outside = tempDir("spool-nowhere-");
    // Three reads, side by side: none changes what the others read.
    const [models, runs, pending] = await Promise.all([spool(["models"]), spool(["runs"]), spool(["pending"], outside)]);
    expect(models.code, models.err).toBe(0);
    expect(models.out).toMatch(/demo\s+demo\s+builtin/);
    expect(runs.code, runs.err).toBe(0);
    expect(runs.out).toContain("no runs in this project");
    expect(runs.err).toBe("");
    expect(pending.code, pending.err).toBe(0);
    expect(pending.out).toContain("nothing is pending in any project");
  }, 60_000);

  it("speaks words, takes short references, and has abort, show, runs --all", async () => {
    const act = await spool(["act", "count them: `wc -l notes.txt`", "--model", "demo", "--yes"]);
    expect(act.code, act.err).toBe(0);
    expect(act.out).toContain("finished: done, exit 0");
    expect(act.out).not.toMatch(/\((200|500|202)\)/);

    const runs = await spool(["runs"]);
    expect(runs.out).toMatch(/run-1\s+done\s+count them: `wc -l notes.txt`\s+demo/);
    expect(runs.out).not.toMatch(/\(200\)/);

    // The latest run's latest command; a run by number; a command by number and by part of its path.
    const refsList = [[], ["1"], ["run-1", "1"], ["1", "wc"]];
    // Reads of a finished run, side by side.
    const [missing, ...tails] = await Promise.all([spool(["tail", "1", "9"]), ...refsList.map((refs) => spool(["tail", ...refs]))]);
    tails.forEach((tail, i) => {
      expect(tail.code, `${refsList[i]!.join(" ")}: ${tail.err}`).toBe(0);
      expect(tail.out).toBe("3 notes.txt\n");
    });
    expect(missing.code).toBe(4);
    expect(missing.err).toContain("run-1 has no command 9: it has 1");

    const show = await spool(["show", "1"]);
    expect(show.code, show.err).toBe(0);
    expect(show.out).toContain("▌ prompt count them: `wc -l notes.txt`");
    expect(show.out).toMatch(/#1 wc -l notes\.txt {2}log:\/\/turn_1\/sh\/wc-l-notes-txt · done, exit 0/);
    expect(show.out).toContain("exited 0. Its output ends with:");

    // A command that runs: proposed (nobody answers here), accepted by its exact reference (a bare `spool approve`
    // without a terminal shows it and refuses: test/cli/approve-unseen.test.ts), shown running.
    const long = spawnCli(["act", "`echo started; sleep 60`", "--model", "demo"], env, { cwd: app });
    await long.waitFor(/waiting for a decision/);
    // Following it before anyone decides says what it waits for, then follows it once accepted.
    const follow = spawnCli(["tail", "2", "-f"], env, { cwd: app });
    await follow.waitFor(/log:\/\/turn_1\/sh\/echo-started-sleep-60 waits for a decision \(spool approve run-2/, "stderr");
    const unseen = await spool(["approve"]);
    expect(unseen.code).toBe(2);
    expect(unseen.err).toContain("to accept this one, name it: `spool approve run-2 1`");
    const approve = await spool(["approve", "run-2", "1"]);
    expect(approve.code, approve.err).toBe(0);
    expect(approve.out).toMatch(/^accepted log:\/\/turn_1\/sh\/echo-started-sleep-60: running on local/);
    await long.waitFor(/started/);
    const entries = await spool(["entries"]);
    expect(entries.out).toMatch(/1\s+log:\/\/turn_1\/sh\/echo-started-sleep-60\s+running/);
    const runners = await spool(["runners"]);
    expect(runners.out).toMatch(/local\s+local\s+implied/);

    // Cancelled: tail -f says how it ended.
    await follow.waitFor(/started/);
    const cancel = await spool(["cancel", "2"]);
    expect(cancel.code, cancel.err).toBe(0);
    const followed = await follow.exitsWithin(20_000);
    expect(followed.code).toBe(1);
    expect(follow.stderr()).toMatch(/log:\/\/turn_1\/sh\/echo-started-sleep-60: cancelled/);
    // The act that followed it: its command was cancelled from another client, so the work was not done (exit 1).
    expect((await long.exitsWithin(30_000)).code).toBe(1);

    // abort: a run waiting on a proposal.
    const third = spawnCli(["act", "`echo third`", "--model", "demo"], env, { cwd: app });
    await third.waitFor(/waiting for a decision/);
    const abort = await spool(["abort"]);
    expect(abort.code, abort.err).toBe(0);
    expect(abort.out).toMatch(/aborted run-3: rejected 1 proposal/);
    expect((await third.exitsWithin(20_000)).code).toBe(130);
    const again = await spool(["abort", "3"]);
    expect(again.code).toBe(1);
    expect(again.err).toContain("run-3 is aborted: nothing left to abort");

    // Another project, then every project's runs.
    const other = gitProject("other");
    expect((await spool(["act", "`true`", "--model", "demo", "--yes"], other)).code).toBe(0);
    const all = await spool(["runs", "--all"]);
    expect(all.out).toMatch(/run-1\s+other\s+done/);
    expect(all.out).toMatch(/run-3\s+app\s+aborted/);
    const quiet = await spool(["runs", "-q"]);
    expect(quiet.out).toBe("run-3\nrun-2\nrun-1\n");
  }, 120_000);

  it("tab completion: commands, options and run names (bash)", async () => {
    const bin = tempDir("spool-bin-");
    writeFileSync(join(bin, "spool"), `#!/bin/sh\nexec "${process.execPath}" "${SPOOL_BIN}" "$@"\n`);
    chmodSync(join(bin, "spool"), 0o755);
    const script = await spool(["completion", "bash"]);
    expect(script.code).toBe(0);
    writeFileSync(join(bin, "completion.bash"), script.out);
    const complete = (words: string[]) =>
      execFileSync(
        "bash",
        [
          "-c",
          `source ${join(bin, "completion.bash")}; COMP_WORDS=(${words.map((w) => `"${w}"`).join(" ")}); COMP_CWORD=${words.length - 1}; _spool; echo "\${COMPREPLY[@]}"`,
        ],
        { cwd: app, env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}` }, encoding: "utf8" },
      ).trim();
    expect(complete(["spool", "ta"])).toBe("tail");
    // Each command is offered once (help and completion were listed twice).
    expect(complete(["spool", "co"])).toBe("completion");
    expect(complete(["spool", "runs", "--a"])).toBe("--all");
    await eventually(async () => (await spool(["runs", "-q"])).out.length > 0, 20_000, "a run");
    expect(complete(["spool", "show", "run-"]).split(" ")).toContain("run-1");
    const [zsh, fish, tcsh] = await Promise.all(["zsh", "fish", "tcsh"].map((shell) => spool(["completion", shell])));
    expect([zsh!.code, fish!.code, tcsh!.code]).toEqual([0, 0, 2]);
  }, 60_000);

  it("small things: usage errors are usage errors, did-you-mean for options and settings, -v, spool runner's defaults", async () => {
    // A misspelt config.json key names the right one.
    const typoHome = tempDir("spool-typo-");
    writeFileSync(join(typoHome, "config.json"), JSON.stringify({ prot: 7421 }));
    // Commands that change nothing, side by side.
    const [badServer, typo, version, model, help, refused] = await Promise.all([
      spool(["runs", "--server", "foo"]),
      spool(["runs", "--jsn"]),
      spool(["-v"]),
      spool(["act", "hello", "--model", "fats"]),
      spool(["help", "serve"]),
      spool(["runs"], app, { SPOOL_HOME: typoHome }),
    ]);
    expect(badServer.code).toBe(2);
    expect(badServer.err).toContain('--server must be a WebSocket URL such as ws://127.0.0.1:7420/ (or ws+unix:///path/spool.sock:/), got "foo"');
    expect(typo.code).toBe(2);
    expect(typo.err).toContain("did you mean --json?");
    expect(version.code).toBe(0);
    expect(version.out).toMatch(/^spool \d+\.\d+\.\d+/);
    expect(model.code).toBe(4);
    expect(model.err).toContain('the server has no model "fats" (it has: demo)');
    expect(model.err).toContain("SPOOL_MODEL_FATS=openai/<model-id>");
    const waiting = spawnCli(["act", "`echo on-nosuch`", "--model", "demo"], env, { cwd: app });
    await waiting.waitFor(/waiting for a decision/);
    const [waitingOne] = JSON.parse((await spool(["pending", "--json"])).out) as { run: string; path: string }[];
    const runner = await spool(["approve", waitingOne!.run, waitingOne!.path, "--runner", "nosuch"]);
    expect(runner.code).toBe(4);
    expect(runner.err).toContain('the project has no runner "nosuch" — it has: local (spool runners)');
    expect(runner.err).not.toContain('runner "self"');
    expect((await spool(["abort"])).code).toBe(0);
    await waiting.exitsWithin(20_000);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('"prot" is not a setting — did you mean "port"?');
    expect(help.out).toContain('docs/cli.md "Settings"');
    // spool runner finds the server as every other command does: no --server, no --token-file (the home's Unix socket).
    const attached = await spawnRunner(["--project", "app", "--name", "extra", "--backend", "local"], { ...env, SPOOL_LOG: "warn" });
    expect(attached.output()).toContain(`attached to ws+unix://${join(home, "spool.sock")}:/`);
    await attached.stop();
  }, 60_000);
});

describe("spool models on a server without models", () => {
  it("says how to define one", async () => {
    const home = tempDir("spool-nomodels-");
    const serve = await spawnServe(["--port", "0", "--home", home], { SPOOL_DEMO_MODEL: "" });
    try {
      const cli = spawnCli(["models"], { SPOOL_HOME: home, SPOOL_SERVER: serve.url }, { cwd: tempDir() });
      expect((await cli.exitsWithin(20_000)).code).toBe(0);
      expect(cli.stdout()).toContain("no models on this server — define one where it runs");
      expect(cli.stdout()).toContain("spool serve --demo-model");
    } finally {
      await serve.stop();
    }
  }, 60_000);
});
