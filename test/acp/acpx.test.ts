import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { LOCK_FILE } from "../../src/home/lock.js";
import { infraRequired } from "../helpers/infra.js";
import { alive, freePort, SPOOL_BIN } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";
import { ACPX, installAcpx, NODE22 } from "./acpx-install.js";

/**
 * Issue 38, point 9: the server `spool acp` starts for an editor outlives that editor, also one that ends its
 * agent's whole process tree when it exits (acpx does).
 */
describe("spool acp under acpx 0.19 on Node 22", () => {
  let missing: string | null = "not installed yet";
  let home: string;
  let project: string;
  let port: number;
  let serverPid = 0;

  beforeAll(async () => {
    missing = await installAcpx();
    if (missing) {
      if (infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${missing}`);
      console.warn(`skipping the acpx tests: ${missing}`);
      return;
    }
    const base = tempDir("spool-acpx-");
    home = join(base, "spool-home");
    project = join(base, "app");
    mkdirSync(home, { recursive: true });
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
    port = await freePort();
    writeFileSync(join(home, "config.json"), JSON.stringify({ port, demoModel: true }));
  }, 300_000);
  afterAll(() => {
    if (serverPid && alive(serverPid)) process.kill(serverPid, "SIGTERM");
  });

  it("the server spool acp started goes on after acpx exits", async (ctx) => {
    if (missing) return ctx.skip();
    const acpx = spawn(
      NODE22,
      [ACPX, "--approve-all", "--format", "quiet", "--agent", `${process.execPath} ${SPOOL_BIN} acp --model demo`, "exec", "say hi: `echo hi`"],
      // acpx keeps its sessions under $HOME: a fresh one.
      { cwd: project, env: { ...process.env, HOME: join(home, ".."), SPOOL_HOME: home, SPOOL_LOG: "warn" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    acpx.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    acpx.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => acpx.once("exit", resolve));
    expect(code, out).toBe(0);
    expect(out).toContain("exited 0");
    // acpx has ended its agent's process tree by now: the server spool acp started is not part of it.
    serverPid = (JSON.parse(readFileSync(join(home, LOCK_FILE), "utf8")) as { pid: number }).pid;
    expect(alive(serverPid), `server pid ${serverPid}`).toBe(true);
    const client = await SpoolClient.connect(`ws://127.0.0.1:${port}/`, { token: readFileSync(join(home, "token"), "utf8").trim() });
    try {
      await client.initialize(undefined, { root: project });
      const { runs } = await client.call("run/list", {});
      expect(runs).toHaveLength(1);
    } finally {
      client.close();
    }
  }, 180_000);
});
