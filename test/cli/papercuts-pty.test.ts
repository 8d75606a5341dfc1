import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServeProcess, spawnServe } from "../helpers/process.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { tempDir } from "../helpers/server.js";

/**
 * Issue 48 point 9, read off a terminal's screen (node-pty + @xterm/headless), as a person sees `spool act` with the
 * demo model: the facts name the time limit as a duration, the typing hint names `spool attach RUN N`, and a
 * rejection is a line of its own that never splits the model's words.
 */
describe("spool act's words on a terminal screen", () => {
  let home: string;
  let project: string;
  let serve: ServeProcess;
  beforeAll(async () => {
    const base = tempDir("spool-papercuts-pty-");
    home = join(base, "home");
    project = join(base, "app");
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
    serve = await spawnServe(["--port", "0", "--home", home, "--demo-model"]);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });
  const act = (prompt: string, run: string) =>
    spoolInTerminal(["act", prompt, "--model", "demo", "--run", run], {
      cwd: project,
      env: { SPOOL_HOME: home, SPOOL_SERVER: serve.url },
      cols: 120,
      rows: 50,
    });

  it("the facts give the server's default time limit as a duration, and a typed key is told `spool attach RUN N`", async () => {
    const term = act("Run: `echo started; sleep 60`", "words-1");
    try {
      await term.waitFor("(one key): ", "the question");
      const facts = await term.screen();
      expect(facts).toMatch(/timeout\s+30 min \(the server's default\)/);
      expect(facts).not.toContain("server default");
      term.type("y");
      await term.waitFor(/started\r?\n/, "the command's output");
      term.type("z");
      await term.waitFor("spool attach words-1 1", "the typing hint");
      const screen = await term.screen();
      expect(screen).toContain("to answer it: spool attach words-1 1, or spool input words-1 1 TEXT");
      expect(screen).not.toMatch(/spool attach log:\/\//);
    } finally {
      term.kill();
    }
  }, 90_000);

  it("a rejection is its own line; the model's line around it is whole", async () => {
    const term = act("Run: `echo never`", "words-2");
    try {
      await term.waitFor("(one key): ", "the question");
      term.type("n");
      // act exits 1 once the run is done: a proposal of it was rejected (README's exit codes).
      expect(await term.exited).toBe(1);
      const lines = (await term.screen()).split("\n").map((l) => l.trimEnd());
      expect(lines).toContain("  rejected");
      // The demo model's words never broken around the rejection (the old screen had `│ [demo` / `rejected` / `│ model]`).
      expect(
        lines.filter((l) => /\[demo$|^│ model\]/.test(l)),
        lines.join("\n"),
      ).toEqual([]);
      expect(lines.some((l) => l.includes("[demo model]"))).toBe(true);
    } finally {
      term.kill();
    }
  }, 90_000);
});
