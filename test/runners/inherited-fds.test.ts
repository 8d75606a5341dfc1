import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ended } from "../helpers/live-output.js";
import { type RunnerProcess, type ServeProcess, spawnRunner, spawnServe } from "../helpers/process.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { tempDir } from "../helpers/server.js";

/**
 * What a process that starts Spool leaves open is not the commands' (SPEC §7 "Sandbox modes"): `spool serve` and
 * `spool runner` started by a shell that left three descriptors open (a file it reads, one it writes, a directory:
 * 100, 150, 200), run commands that hold stdin, stdout and stderr alone, sandboxed or not. Before, every command held
 * the three: it could write the file of whatever started Spool. (Node marks what it inherited close-on-exec from 0
 * up to the first closed descriptor past 15 (`uv_disable_stdio_inheritance`): one beyond a gap passed on, as this
 * machine's shell's 251 did.)
 */
describe("a command holds none of the descriptors Spool's process inherited", () => {
  let serve: ServeProcess;
  let runner: RunnerProcess;
  let client: SpoolClient;
  beforeAll(async () => {
    const home = tempDir("spool-fds-home-");
    // The node that runs spool, started by a shell that keeps 100, 150 and 200 open for it (not closed at exec).
    const sloppy = join(tempDir("spool-fds-parent-"), "node");
    writeFileSync(sloppy, `#!/bin/bash\nexec 100</dev/null 150>>"$0.log" 200<"\${0%/*}"\nexec ${process.execPath} "$@"\n`);
    chmodSync(sloppy, 0o755);
    serve = await spawnServe(["--port", "0", "--home", home], {}, sloppy);
    const token = readFileSync(join(home, "token"), "utf8").trim();
    client = await SpoolClient.connect(serve.url, { token });
    await client.initialize("fds", { root: tempDir("spool-fds-root-") });
    runner = await spawnRunner(
      ["--server", serve.url, "--token-file", join(home, "token"), "--project", "fds", "--name", "kept", "--backend", "local"],
      {},
      sloppy,
    );
  });
  afterAll(async () => {
    client.close();
    await runner.stop();
    await serve.stop();
  });

  // The shell's own descriptors (`; true` keeps it the shell's, not ls's), listed by ls alone: in a pipeline the shell
  // itself holds the pipes' ends while it starts its parts, and ls saw them (3, 4, 5) when it ran before the shell had
  // closed them (two CI runs under load).
  const command = "ls /proc/$$/fd; true";

  it.each([
    ["the server's own runner, not sandboxed", { sandbox: "full" as const }],
    ["the server's own runner, workspace-write", { sandbox: "workspace-write" as const }],
    ["an attached runner, not sandboxed", { sandbox: "full" as const, runner: "kept" }],
    ["an attached runner, workspace-write", { sandbox: "workspace-write" as const, runner: "kept" }],
  ])("%s", async (name, options) => {
    const run = name.replace(/\W+/g, "-");
    const { path, stdout } = await proposeAndAccept(client, client, run, command, options);
    const { out } = await ended(client, run, path, stdout);
    expect(out.body.split(/\s+/).filter(Boolean)).toEqual(["0", "1", "2"]);
  });
});

/**
 * What V8 writes for the process under a profiling flag is not Spool's to close: `--perf-basic-prof` opens
 * /tmp/perf-PID.map without close-on-exec and keeps writing to that number. Closed at start, the number went to the
 * database next and took V8's lines: `spool serve` stopped with "file is not a database" (bench/budget.ts's
 * profiles). Now the server starts, runs a command and keeps its database, and V8's map still grows.
 */
describe("a server run with --perf-basic-prof", () => {
  let serve: ServeProcess;
  let map = "";
  afterAll(async () => {
    await serve?.stop();
    if (map) rmSync(map, { force: true });
  });

  it("keeps its database and V8's map file", async () => {
    const home = tempDir("spool-fds-perf-");
    serve = await spawnServe(["--port", "0", "--home", home], { NODE_OPTIONS: "--perf-basic-prof" });
    map = `/tmp/perf-${serve.child.pid}.map`;
    const token = readFileSync(join(home, "token"), "utf8").trim();
    const client = await SpoolClient.connect(serve.url, { token });
    try {
      await client.initialize("perf", { root: tempDir("spool-fds-perf-root-") });
      const { path, stdout } = await proposeAndAccept(client, client, "perf-map", "echo kept", { sandbox: "full" });
      const { out } = await ended(client, "perf-map", path, stdout);
      expect(out.body).toBe("kept\n");
    } finally {
      client.close();
    }
    expect(statSync(map).size).toBeGreaterThan(0);
    expect(readFileSync(join(home, "spool.db")).subarray(0, 16).toString("latin1")).toBe("SQLite format 3\0");
  });
});
