import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type ServeProcess, SPOOL_BIN, spawnCli, spawnServe } from "../helpers/process.js";
import { inTerminal } from "../helpers/pty.js";
import { tempDir } from "../helpers/server.js";

/**
 * `spool attach` in a real terminal to a command without one (issue 48): Enter ends a line with a newline, so a
 * command that reads lines gets them, and `spool tail --input` shows exactly what was sent.
 */
describe("spool attach to a command that reads lines", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    home = tempDir("spool-attach-home-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    env = { SPOOL_HOME: home };
    app = join(tempDir("spool-attach-"), "app");
    mkdirSync(app);
    execFileSync("git", ["init", "-q", app]);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  for (const [name, stty] of [
    ["a terminal as a shell leaves it", null],
    ["a terminal that does not turn Enter into a newline (stty -icrnl)", "-icrnl"],
  ] as const) {
    it(`typed lines reach read, each once, in ${name}`, async () => {
      const run = `attach-${stty ? "raw" : "cooked"}`;
      const act = spawnCli(["act", 'Ask: `read a; echo "got <$a>"; read b; echo "got <$b>"`', "--model", "demo", "--yes", "--run", run], env, { cwd: app });
      await act.waitFor(/accepted, running on/);
      // Through a shell, as a person runs it; the terminal set up first as some terminals (or a program before) leave it.
      const attach = inTerminal("sh", ["-c", `${stty ? `stty ${stty} && ` : ""}exec "${process.execPath}" "${SPOOL_BIN}" attach ${run} 1`], {
        cwd: app,
        env: { SPOOL_HOME: home },
      });
      try {
        await attach.waitFor("Ctrl-] detaches", "attached");
        // A key typed wrong and erased: the line sent is the line as it was finished.
        attach.type("firsx\u007ft\r");
        await attach.waitFor("got <first>", "the first line read");
        attach.type("second\r");
        await attach.waitFor("got <second>", "the second line read");
        expect(await attach.exited, attach.raw()).toBe(0);
        expect(attach.raw()).toMatch(/ended: done, exit 0/);
      } finally {
        attach.kill();
      }
      expect((await act.exitsWithin(30_000)).code, act.output()).toBe(0);
      const tail = spawnCli(["tail", run, "1", "--input"], env, { cwd: app });
      expect((await tail.exitsWithin(30_000)).code, tail.stderr()).toBe(0);
      expect(tail.stdout()).toBe("[typed] first\ngot <first>\n[typed] second\ngot <second>\n");
    }, 90_000);
  }
});
