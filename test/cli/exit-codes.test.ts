import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_TABLE } from "../../src/cli/exit-codes.js";
import { freePort, runCli, type ServeProcess, spawnCli, spawnServe } from "../helpers/process.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { eventually, tempDir } from "../helpers/server.js";

/** README's "Exit codes" table: its rows, code and meaning (backticks dropped). */
function readmeTable(): [number, string][] {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const from = readme.indexOf("Exit codes, for every command");
  expect(from).toBeGreaterThan(0);
  const table = /\| code \| meaning \|\n\|---\|---\|\n((?:\|.*\|\n)+)/.exec(readme.slice(from))![1]!;
  return table
    .trim()
    .split("\n")
    .map((row) => {
      const [, code, meaning] = /^\| (\d+) \| (.*) \|$/.exec(row)!;
      return [Number(code), meaning!.replace(/`/g, "")];
    });
}

/** The codes a test below runs (each row of the table is one `describe`). */
const TESTED = [0, 1, 2, 3, 4, 130];

/** Every row of README's exit-code table, run over real processes: a server with the demo model, the CLI, a terminal where a key is pressed. */
describe("exit codes (README's table)", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  let env: NodeJS.ProcessEnv;
  const spool = (args: string[], cwd = app, extra: NodeJS.ProcessEnv = {}) => runCli(args, { ...env, ...extra }, cwd, 60_000);
  const terminal = (args: string[]) => spoolInTerminal(args, { cwd: app, env: { SPOOL_HOME: home }, cols: 160, rows: 60 });
  beforeAll(async () => {
    home = tempDir("spool-exit-home-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    env = { SPOOL_HOME: home };
    app = join(tempDir("spool-exit-"), "app");
    mkdirSync(app);
    execFileSync("git", ["init", "-q", app]);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("README's table, spool help and the CLI's own table say the same, and every row is run here", async () => {
    expect(readmeTable()).toEqual(EXIT_TABLE.map(({ code, meaning }) => [code, meaning]));
    expect(readmeTable().map(([code]) => code)).toEqual(TESTED);
    const help = await spool(["help"]);
    expect(help.code).toBe(0);
    const flat = help.out.replace(/\s+/g, " ");
    for (const [code, meaning] of readmeTable()) expect(flat).toContain(` ${code} ${meaning}`);
    // act's and ask's own help list what each code means for them, from the same table.
    for (const mode of ["act", "ask"]) {
      const help = (await spool(["help", mode])).out.replace(/\s+/g, " ");
      for (const { code, act } of EXIT_TABLE) if (act !== null) expect(help).toContain(` ${code} ${act}`);
    }
  }, 60_000);

  describe("0: done", () => {
    it("act whose proposal was accepted and whose run finished", async () => {
      const done = await spool(["act", "Greet: `echo hello`", "--model", "demo", "--yes"]);
      expect(done.code, done.out + done.err).toBe(0);
      expect(done.out).toContain("✔ done");
      expect(done.out).not.toContain("✖");
    }, 60_000);
  });

  describe("1: the work failed", () => {
    it("ask whose proposal was rejected with n at the prompt (a terminal)", async () => {
      const term = terminal(["ask", "What is here? `ls`", "--model", "demo", "--run", "exit-reject"]);
      await term.waitFor("Accept?", "the prompt");
      term.type("n");
      expect(await term.exited, term.raw()).toBe(1);
      // The rejection is said on its own line, between the model's lines, never inside one (issue 48).
      const lines = (await term.screen()).split("\n");
      const rejected = lines.indexOf("  rejected");
      expect(rejected, lines.join("\n")).toBeGreaterThan(0);
      expect(lines[rejected + 1], lines.join("\n")).toMatch(/^│ \[demo model\] /);
      expect(term.raw()).toContain("✖ not done: a proposal was rejected");
      expect(term.raw()).not.toContain("✔ done");
    }, 60_000);

    it("act --yes whose command failed: a script's && stops there", async () => {
      const failed = await spool(["act", "build: `false`", "--model", "demo", "--yes", "--run", "exit-false"]);
      expect(failed.code, failed.out + failed.err).toBe(1);
      expect(failed.out).toContain("finished: failed, exit 1");
      expect(failed.out).toContain("✖ not done: false — failed, exit 1");
      expect(failed.out).not.toContain("✔ done");
      const chained = await runCli(["act", "build: `false`", "--model", "demo", "--yes", "--run", "exit-chain"], env, app, 60_000).then((r) =>
        r.code === 0 ? "deployed" : "stopped",
      );
      expect(chained).toBe("stopped");
    }, 60_000);

    it("act whose running command another client cancelled", async () => {
      const act = spawnCli(["act", "Nap: `sleep 300`", "--model", "demo", "--yes", "--run", "exit-cancelled"], env, { cwd: app });
      await act.waitFor(/accepted, running on/);
      const cancel = await spool(["cancel", "exit-cancelled", "1"]);
      expect(cancel.code, cancel.out + cancel.err).toBe(0);
      const { code } = await act.exitsWithin(30_000);
      expect(code, act.output()).toBe(1);
      expect(act.output()).toMatch(/✖ not done: sleep 300 — cancelled by /);
      expect(act.output()).not.toContain("✔ done");
      // Cancelled without --reason: said once ("cancelled by admin via spool-cli"), not "…: cancelled" after it.
      expect(act.output()).toMatch(/finished: cancelled by admin via spool-cli\n/);
      expect(act.output()).toMatch(/✖ not done: sleep 300 — cancelled by admin via spool-cli\n/);
      const show = await spool(["show", "exit-cancelled"]);
      expect(show.out).toContain("cancelled by admin via spool-cli");
      expect(show.out + act.output()).not.toMatch(/cancelled by admin via spool-cli: cancelled/);
    }, 60_000);

    it("spool runs and spool show say failed and cancelled for the runs act said were not done, and done for one that was", async () => {
      const ok = await spool(["act", "fine: `true`", "--model", "demo", "--yes", "--run", "listed-done"]);
      expect(ok.code, ok.out + ok.err).toBe(0);
      const failed = await spool(["act", "build: `exit 3`", "--model", "demo", "--yes", "--run", "listed-failed"]);
      expect(failed.code, failed.out + failed.err).toBe(1);
      const act = spawnCli(["act", "Nap: `sleep 300`", "--model", "demo", "--yes", "--run", "listed-cancelled"], env, { cwd: app });
      await act.waitFor(/accepted, running on/);
      expect((await spool(["cancel", "listed-cancelled", "1"])).code).toBe(0);
      expect((await act.exitsWithin(30_000)).code, act.output()).toBe(1);
      const runs = await spool(["runs"]);
      expect(runs.code, runs.out + runs.err).toBe(0);
      const state = (run: string) => new RegExp(`^${run}\\s+(\\S+)`, "m").exec(runs.out)?.[1];
      expect({ done: state("listed-done"), failed: state("listed-failed"), cancelled: state("listed-cancelled") }, runs.out).toEqual({
        done: "done",
        failed: "failed",
        cancelled: "cancelled",
      });
      for (const [run, word] of [
        ["listed-failed", "failed"],
        ["listed-cancelled", "cancelled"],
      ] as const) {
        const show = await spool(["show", run]);
        expect(show.out.split("\n")[0], show.out).toMatch(new RegExp(`^${run} {2}${word} {2}`));
      }
    }, 90_000);

    it("cancel, input and abort on a command or run that has finished; tail of a command that exited non-zero", async () => {
      const run = await spool(["act", "Fail: `echo out; exit 3`", "--model", "demo", "--yes", "--run", "exit-finished"]);
      expect(run.code, run.out + run.err).toBe(1);
      const cancel = await spool(["cancel", "exit-finished", "1"]);
      expect(cancel.code, cancel.out + cancel.err).toBe(1);
      expect(cancel.err).toMatch(/had already finished: failed, exit 3/);
      expect(cancel.out).toBe("");
      const input = await spool(["input", "exit-finished", "1", "text"]);
      expect(input.code, input.out + input.err).toBe(1);
      const abort = await spool(["abort", "exit-finished"]);
      expect(abort.code, abort.out + abort.err).toBe(1);
      const tail = await spool(["tail", "exit-finished", "1"]);
      expect(tail.code, tail.out + tail.err).toBe(1);
      expect(tail.out).toBe("out\n");
    }, 120_000);
  });

  describe("2: usage error", () => {
    it("an unknown option, a missing argument, not in a project", async () => {
      expect((await spool(["runs", "--bogus"])).code).toBe(2);
      expect((await spool(["input"])).code).toBe(2);
      const outside = await spool(["act", "hi", "--model", "demo"], tempDir("spool-nowhere-"));
      expect(outside.code, outside.err).toBe(2);
      expect(outside.err).toContain("not in a Spool project");
    }, 60_000);
  });

  describe("3: no server, wrong token, the connection lost", () => {
    it("no server at the address; a wrong token", async () => {
      const none = await spool(["runs", "--server", `ws://127.0.0.1:${await freePort()}/`]);
      expect(none.code, none.err).toBe(3);
      const tokenFile = join(tempDir("spool-token-"), "token");
      writeFileSync(tokenFile, "not-the-token\n");
      const wrong = await spool(["runs", "--server", serve.url, "--token-file", tokenFile]);
      expect(wrong.code, wrong.err).toBe(3);
    }, 60_000);

    it("act loses its server while a command runs (the server stopped, and aborted the run): the command's end is said first, then why it left", async () => {
      const otherHome = tempDir("spool-exit-lost-");
      writeFileSync(join(otherHome, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true }));
      const other = await spawnServe([], { SPOOL_HOME: otherHome });
      const act = spawnCli(["act", "Nap: `sleep 300`", "--model", "demo", "--yes"], { SPOOL_HOME: otherHome }, { cwd: app });
      await act.waitFor(/accepted, running on/);
      await other.stop("SIGTERM");
      const { code } = await act.exitsWithin(30_000);
      expect(code, act.output()).toBe(3);
      const out = act.output();
      expect(out).toMatch(/spool act: the server stopped \(1001 server shutting down\) and ended the commands it ran/);
      expect(out).not.toContain("error:");
      // The server aborted the run as it stopped: the message does not say it goes on.
      expect(out).not.toMatch(/goes on while the server runs/);
      const finished = out.indexOf("finished:");
      expect(finished).toBeGreaterThan(0);
      expect(finished).toBeLessThan(out.indexOf("the server stopped"));
    }, 60_000);
  });

  describe("4: does not exist", () => {
    it("a run, an entry, a model", async () => {
      const model = await spool(["act", "hi", "--model", "nosuch"]);
      expect(model.code, model.err).toBe(4);
      expect(model.err).toContain('the server has no model "nosuch"');
      expect((await spool(["show", "no-such-run"])).code).toBe(4);
      const run = await spool(["act", "Greet: `echo hi`", "--model", "demo", "--yes", "--run", "exit-entries"]);
      expect(run.code, run.err).toBe(0);
      expect((await spool(["tail", "exit-entries", "log://turn_9/sh/none"])).code).toBe(4);
    }, 60_000);
  });

  describe("130: interrupted with Ctrl-C, or the run was aborted", () => {
    it("act where Ctrl-C cancelled the running command, the run then done (a terminal)", async () => {
      const term = terminal(["act", "Nap: `sleep 300`", "--model", "demo", "--yes", "--run", "exit-ctrl-c"]);
      await term.waitFor("accepted, running on", "the command running");
      term.type("\u0003");
      await term.waitFor("cancelling the running command", "the cancel");
      expect(await term.exited, term.raw()).toBe(130);
      expect(term.raw()).toContain("finished: cancelled");
      expect(term.raw()).toContain("✖ not done: sleep 300 — cancelled");
      expect(term.raw()).not.toContain("✔ done");
    }, 60_000);

    it("act whose run another client aborted", async () => {
      const act = spawnCli(["act", "Tidy: `rm nothing`", "--model", "demo", "--run", "exit-aborted"], env, { cwd: app });
      await act.waitFor(/waiting for a decision/);
      const abort = await spool(["abort", "exit-aborted"]);
      expect(abort.code, abort.err).toBe(0);
      const { code } = await act.exitsWithin(30_000);
      expect(code, act.output()).toBe(130);
      await eventually(() => act.output().includes("✖ aborted"), 5_000, "the final line");
    }, 60_000);
  });
});
