import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type ServeProcess, SPOOL_BIN, spawnCli, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/** `sh -c SCRIPT`: when its stdout first holds `expected`, and when it exits (milliseconds since the start). */
function timed(script: string, env: NodeJS.ProcessEnv, cwd: string, expected: string) {
  const started = Date.now();
  const sh = spawn("/bin/sh", ["-c", script], { env: { ...process.env, SPOOL_LOG: "warn", ...env }, cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let printed = -1;
  sh.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (printed < 0 && out.includes(expected)) printed = Date.now() - started;
  });
  sh.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; printed: number; exited: number; out: string; err: string }>((resolve) =>
    sh.once("close", (code) => resolve({ code, printed, exited: Date.now() - started, out, err })),
  );
  return { exited, kill: () => sh.kill("SIGKILL") };
}

/** `spool tail -f` ends when its pipe's reader does, as GNU `tail -f | head` does: not at the command's next line. */
describe("spool tail -f into a pipe whose reader leaves", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    home = tempDir("spool-tailgone-home-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    env = { SPOOL_HOME: home };
    app = join(tempDir("spool-tailgone-"), "app");
    mkdirSync(app);
    execFileSync("git", ["init", "-q", app]);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("spool tail -f | head -2 on a command that then prints nothing exits soon after head, not at the command's next line", async () => {
    const act = spawnCli(["act", "Quiet: `echo one; echo two; echo three; sleep 300`", "--model", "demo", "--yes", "--run", "quiet"], env, { cwd: app });
    try {
      await act.waitFor(/│ three|^three$/m);
      const spool = `${JSON.stringify(process.execPath)} ${JSON.stringify(SPOOL_BIN)}`;
      const pipeline = timed(`${spool} tail -f quiet 1 | head -2`, env, app, "one\ntwo\n");
      const watchdog = setTimeout(pipeline.kill, 30_000);
      const got = await pipeline.exited;
      clearTimeout(watchdog);
      expect(got.out, got.err).toBe("one\ntwo\n");
      expect(got.code, got.err).toBe(0);
      expect(got.printed).toBeGreaterThan(0);
      // head exits as it prints its second line; the pipeline is over once spool tail noticed (it looks every 200 ms),
      // not 300 s later. Quiet that is well under a second; a busy CI run (two suites beside) took 1.24 s.
      expect(got.exited - got.printed, `head printed at ${got.printed} ms, the pipeline ended at ${got.exited} ms`).toBeLessThan(5_000);
    } finally {
      await act.stop("SIGINT");
      await act.stop("SIGKILL");
    }
  }, 90_000);

  it("a reader that stays keeps it following (only a reader's leaving ends it)", async () => {
    const act = spawnCli(["act", "Slow: `echo a; read x < /dev/null; sleep 2; echo b`", "--model", "demo", "--yes", "--run", "stays"], env, { cwd: app });
    try {
      await act.waitFor(/accepted, running on/);
      const spool = `${JSON.stringify(process.execPath)} ${JSON.stringify(SPOOL_BIN)}`;
      const got = await timed(`${spool} tail -f stays 1 | cat`, env, app, "a\n").exited;
      expect(got.out, got.err).toBe("a\nb\n");
      expect(got.code, got.err).toBe(0);
    } finally {
      await act.stop("SIGKILL");
    }
  }, 90_000);
});
