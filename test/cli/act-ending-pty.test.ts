import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnServe } from "../helpers/process.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

const NOTE = "keys typed here do not reach the command";

/** The bytes a process has read so far, from any file (its terminal, its sockets): /proc/PID/io's rchar. */
const bytesRead = (pid: number) => Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? 0);

/** Issue 38 point 6: what `spool act` says while a command runs, and the one line saying how it ended, read on a terminal screen. */
describe("spool act on a terminal: the typing note and how a command ended", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 60_000 } });
    (await ts.clientIn("typing")).close();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("says where typed keys go only once a key is typed while the command runs, and once", async () => {
    model.reset();
    model.reply({ text: "Starting it.", tools: [{ name: "sh", arguments: { command: "echo started; sleep 60" } }] }, { text: "Stopped." });
    const connection = ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "typing"];
    const term = spoolInTerminal(["act", "start it", "--model", "test", "--run", "typing-1", ...connection], { cwd: ts.home, cols: 160, rows: 40 });
    const other = await ts.clientIn("typing");
    try {
      await term.waitFor("(one key): ", "the question");
      term.type("y");
      await term.waitFor("│ started", "the command's output");
      // Accepted and running, nothing typed: nothing said about typing.
      expect(term.raw()).not.toContain(NOTE);
      term.type("z");
      await term.waitFor(NOTE, "the note once a key is typed");
      // node-pty writes on libuv's thread pool: on a loaded machine "zz" could reach the terminal after the cancel
      // below, once the command had ended and the terminal echoed again. The cancel waits for the CLI to read them.
      const readBefore = bytesRead(term.pty.pid);
      term.type("zz");
      await eventually(() => bytesRead(term.pty.pid) >= readBefore + 2, 30_000, "the CLI to read the keys typed");
      const [log] = (await other.call("entry/list", { run: "typing-1", pattern: "log://*" })).entries;
      await other.call("stream/cancel", { run: "typing-1", path: log!.path, reason: "enough" });
      // Cancelled from another client: the work was not done (README's exit codes).
      expect(await term.exited).toBe(1);
      const screen = await term.screen();
      expect(screen.split(NOTE).length - 1, screen).toBe(1);
      // Its keys were read, never echoed on the screen.
      expect(screen, screen).not.toMatch(/(^|\s)z+(\s|$)/m);
      expect(screen).toMatch(/finished: cancelled by .+: enough/);
    } finally {
      term.kill();
      other.close();
    }
  }, 90_000);
});

describe("spool act when the server stops under a running command", () => {
  it("its finished line says what the command's entry records (aborted: server shutting down), not the channels' cancelled", async () => {
    const base = tempDir("spool-act-stop-");
    const home = join(base, "home");
    const project = join(base, "app");
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
    const serve = await spawnServe(["--port", "0", "--home", home, "--demo-model"]);
    const term = spoolInTerminal(["act", "Run: `echo started; sleep 60`", "--model", "demo"], {
      cwd: project,
      env: { SPOOL_HOME: home, SPOOL_SERVER: serve.url },
      cols: 160,
      rows: 40,
    });
    try {
      await term.waitFor("(one key): ", "the question");
      term.type("y");
      await term.waitFor(/started\r?\n/, "the command's output");
      expect(await serve.stop()).toBe(0);
      // The connection is lost: exit 3, the run left on the server.
      expect(await term.exited).toBe(3);
      const screen = await term.screen();
      const finished = screen.split("\n").filter((l) => l.includes("finished:"));
      expect(finished, screen).toEqual(["  finished: aborted: server shutting down"]);
    } finally {
      term.kill();
      await serve.stop();
    }
  }, 90_000);
});
