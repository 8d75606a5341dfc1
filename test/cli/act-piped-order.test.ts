import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { RUN } from "../../src/protocol/status.js";
import { freePort, type ServeProcess, SPOOL_BIN, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

const LINES = 1_000_000;

/**
 * What piped `spool act` wrote, in blocks: its own lines before the command's output, the output (every number
 * 1..LINES, in order, nothing between them), then the command's end, the model's words and the final line.
 */
function expectBlocksInOrder(text: string): void {
  const lines = text.split("\n");
  const first = lines.indexOf("1");
  expect(first, text.slice(0, 2000)).toBeGreaterThan(0);
  expect(lines[first - 1]).toMatch(/accepted, running on/);
  for (let i = 0; i < LINES; i++) {
    if (lines[first + i] !== String(i + 1)) throw new Error(`line ${first + i}: expected ${i + 1}, got ${JSON.stringify(lines[first + i])}`);
  }
  const after = lines.slice(first + LINES);
  expect(after[0]).toMatch(/^ {2}finished: done, exit 0$/);
  expect(after[1]).toMatch(/^\[demo model\] `seq 1 \d+` exited 0/);
  expect(after.filter((l) => l !== "").at(-1)).toBe("✔ done");
}

/** Piped `spool act` (issue 48): the model's final words never land inside the command's output, whatever stdout is. */
describe("spool act with stdout a file or a slow pipe", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  let client: SpoolClient;
  beforeAll(async () => {
    home = tempDir("spool-piped-home-");
    // The model waits for the command's end (up to two minutes), not the default 10 s: a million lines through a
    // sandbox took a busy machine past 10 s (CI, Node 24), and the model's words were then a "still running" first —
    // its waiting is not what this file tests.
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true, toolYieldMs: 120_000 }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    app = join(tempDir("spool-piped-"), "app");
    mkdirSync(app);
    execFileSync("git", ["init", "-q", app]);
    client = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await client.initialize("app", { root: app });
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await serve?.stop();
  });

  const act = (run: string, stdout: "pipe" | number) =>
    spawn(process.execPath, [SPOOL_BIN, "act", `Count: \`seq 1 ${LINES}\``, "--model", "demo", "--yes", "--run", run], {
      cwd: app,
      env: { ...process.env, SPOOL_HOME: home, SPOOL_LOG: "warn" },
      stdio: ["ignore", stdout, "pipe"],
    });

  it("to a file: every block ends before the next starts", async () => {
    const file = join(tempDir("spool-piped-out-"), "out.txt");
    const fd = openSync(file, "w");
    const child = act("piped-file", fd);
    closeSync(fd);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, stderr).toBe(0);
    expectBlocksInOrder(readFileSync(file, "utf8"));
  }, 120_000);

  it("through a pipe read only once the run is done on the server: every block ends before the next starts", async () => {
    const child = act("piped-slow", "pipe");
    child.stdout!.pause();
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.once("exit", resolve));
    // The reader comes back only once the model has read the command's end and finished the run.
    await eventually(
      async () => (await client.call("run/get", { run: "piped-slow" }).catch(() => null))?.run.status === RUN.done,
      90_000,
      "the run done on the server",
    );
    const parts: Buffer[] = [];
    child.stdout!.on("data", (d: Buffer) => parts.push(d));
    const closed = new Promise((resolve) => child.stdout!.once("close", resolve));
    child.stdout!.resume();
    expect(await exit, stderr).toBe(0);
    await closed;
    expectBlocksInOrder(Buffer.concat(parts).toString("utf8"));
  }, 120_000);
});
