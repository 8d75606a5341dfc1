import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type ServeProcess, SPOOL_BIN, spawnServe } from "../helpers/process.js";
import { inTerminal } from "../helpers/pty.js";
import { tempDir } from "../helpers/server.js";

/** The state letter of process `pid` (R, S, T when stopped…), from /proc. */
function stateOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]!;
}

/**
 * README's tour line `spool act '…' --model demo --yes &` in an interactive bash with job control, in a real
 * terminal (issue 48): the job runs in the background without being stopped, and after `fg` it ends in order.
 */
describe("spool act as a background job of an interactive shell", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  let bin: string;
  beforeAll(async () => {
    home = tempDir("spool-job-home-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    const base = tempDir("spool-job-");
    app = join(base, "app");
    mkdirSync(app);
    execFileSync("git", ["init", "-q", app]);
    bin = join(base, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "spool"), `#!/bin/sh\nexec "${process.execPath}" "${SPOOL_BIN}" "$@"\n`);
    chmodSync(join(bin, "spool"), 0o755);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("`spool act … --yes &` keeps running (never Stopped (tty output)); after fg its blocks come in order and it exits 0", async () => {
    const shell = inTerminal("bash", ["--norc", "--noprofile", "-i"], {
      cwd: app,
      cols: 160,
      rows: 60,
      env: { SPOOL_HOME: home, PATH: `${bin}:${process.env.PATH}`, PS1: "$ ", HISTFILE: "/dev/null" },
    });
    try {
      await shell.waitFor("$ ", "the prompt");
      // The command waits for a file the test makes: it is running while the job is looked at.
      shell.type("spool act 'Wait: `while [ ! -e go ]; do sleep 0.1; done; echo went`' --model demo --yes &\r");
      await shell.waitFor("accepted, running on", "the command running");
      shell.type("jobs -l\r");
      const listed = /\[1\]\+\s+(\d+) (\S+)/;
      // Typed once the shell prompts again (bash's line editor drops keys typed while it sets the terminal up).
      await shell.waitFor(/\[1\]\+\s+\d+ [^\n]*\n[^\n]*\$ $/, "jobs -l, then the prompt");
      const [, pid, state] = listed.exec(shell.raw())!;
      expect(state, shell.raw()).toBe("Running");
      // Not stopped, then or since: it answers its server's pings (a stopped client loses its connection, 1006).
      expect(stateOf(Number(pid))).not.toBe("T");
      expect(shell.raw()).not.toContain("Stopped");
      shell.type("fg\r");
      await shell.waitFor(/fg\r?\n[^\n]*spool act/, "fg");
      // In front now, it watches the keyboard (from SIGCONT on): a key typed says where typing goes, in short references.
      shell.type("x");
      await shell.waitFor("keys typed here do not reach the command; to answer it: spool attach run-1 1, or spool input run-1 1 TEXT", "the note on typing");
      writeFileSync(join(app, "go"), "");
      await shell.waitFor("✔ done", "the run's end");
      shell.type('echo "rc=$?"\r');
      await shell.waitFor("rc=0", "the job's exit code 0");
      const raw = shell.raw();
      expect(raw).not.toContain("Stopped");
      expect(raw).not.toContain("lost the connection");
      // Every block in order: the command's output, its end, then the model's words and the run's.
      const at = (text: string) => raw.indexOf(text);
      expect(at("│ went")).toBeGreaterThan(at("accepted, running on"));
      expect(at("finished: done, exit 0")).toBeGreaterThan(at("│ went"));
      expect(at("exited 0. Its output ends with")).toBeGreaterThan(at("finished: done, exit 0"));
      expect(at("✔ done")).toBeGreaterThan(at("exited 0. Its output ends with"));
    } finally {
      shell.kill();
    }
  }, 90_000);
});
