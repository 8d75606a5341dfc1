import { execFile } from "node:child_process";
import { chmodSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { type Check, runChecks } from "../../src/ops/doctor.js";
import { findProgram } from "../../src/runners/sandbox/sandbox.js";
import { infraRequired } from "../helpers/infra.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const bwrap = findProgram("bwrap", process.env.PATH);
const bwrapMissing = bwrap ? null : "bubblewrap (bwrap) is not installed (scripts/test-infra.sh)";
if (bwrapMissing && !infraRequired) console.warn(`skipping the doctor's bubblewrap-present test: ${bwrapMissing}`);

const byName = (checks: Check[], name: string) => checks.find((c) => c.name === name)!;

describe("spool doctor", () => {
  const dirs: string[] = [];
  let ts: TestServer | undefined;
  afterEach(async () => {
    await ts?.stop();
    ts = undefined;
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const home = () => {
    const dir = tempDir("spool-doctor-");
    dirs.push(dir);
    return join(dir, "home");
  };
  /** A PATH without bwrap (nor anything else): bubblewrap hidden. */
  const emptyPath = () => {
    const dir = tempDir("spool-doctor-path-");
    dirs.push(dir);
    return dir;
  };

  it.skipIf(bwrapMissing !== null && !infraRequired)("with bubblewrap on the PATH: it builds the sandbox, all three modes", async () => {
    if (bwrapMissing) throw new Error(`SPOOL_TEST_INFRA=required but ${bwrapMissing}`);
    const env = { PATH: process.env.PATH ?? "" };
    const checks = await runChecks({ config: loadConfig({ home: home() }, env), env });
    expect(byName(checks, "bubblewrap")).toMatchObject({ status: "ok", data: { path: bwrap, modes: ["read-only", "workspace-write", "full"] } });
    // Node 20 is past its end of life: a warning there (test/ops/node-lines.test.ts), ok on 22 and 24.
    expect(byName(checks, "node").status).toBe(process.versions.node.startsWith("20.") ? "warn" : "ok");
  });

  it("with bubblewrap hidden from the PATH: only the full mode, a warning; a failure when the configuration asks for workspace-write", async () => {
    const env = { PATH: emptyPath() };
    const checks = await runChecks({ config: loadConfig({ home: home() }, env), env });
    expect(byName(checks, "bubblewrap")).toMatchObject({ status: "warn", data: { path: null, modes: ["full"] } });
    expect(byName(checks, "bubblewrap").fix).toContain("apt-get install bubblewrap");
    expect(byName(checks, "sandbox network").status).toBe("info");
    const asking = { ...env, SPOOL_SANDBOX: "workspace-write" };
    const strict = await runChecks({ config: loadConfig({ home: home() }, asking), env: asking });
    expect(byName(strict, "bubblewrap").status).toBe("fail");
  });

  it("as a command: --json, exit 1 with the fix for a home others may read, and the running server's own view", async () => {
    const dir = home();
    ts = await startTestServer({ home: dir });
    writeFileSync(join(dir, "config.json"), JSON.stringify({ port: ts.server.port }));
    const env = { ...process.env, SPOOL_HOME: dir, SPOOL_FROM_SOURCE: "" };
    const good = await run(process.execPath, [join(repo, "bin", "spool.js"), "doctor", "--json"], { env });
    const report = JSON.parse(good.stdout) as { ok: boolean; checks: Check[] };
    expect(report.ok).toBe(true);
    expect(byName(report.checks, "home")).toMatchObject({ status: "ok", data: { mode: "0700" } });
    expect(byName(report.checks, "token")).toMatchObject({ status: "ok", data: { mode: "0600" } });
    expect(byName(report.checks, "database").data).toMatchObject({ path: join(dir, "spool.db") });
    // The transports and what each proves: the home's socket, and TCP where the server proves itself (no TLS certificate).
    expect(byName(report.checks, "transport")).toMatchObject({ status: "ok", data: { socket: join(dir, "spool.sock"), proof: true, tls: false } });
    expect(byName(report.checks, "transport").detail).toContain("no certificate to pin");
    expect(byName(report.checks, "server")).toMatchObject({ status: "ok", data: { ready: true, runners: { local: 0, docker: 0, ssh: 0 } } });

    chmodSync(dir, 0o755);
    const bad = await run(process.execPath, [join(repo, "bin", "spool.js"), "doctor"], { env }).catch((error: { code: number; stdout: string }) => error);
    expect(bad).toMatchObject({ code: 1 });
    expect(bad.stdout).toMatch(/^FAIL\s+home\s+.* is mode 0755/m);
    expect(bad.stdout).toContain(`fix: chmod 700 ${dir}`);
    expect(bad.stdout).toContain("1 problem to fix");
  });

  it("a model without a base URL of its own is said to be at its provider's address, never a bare 'at'", async () => {
    const env = { PATH: process.env.PATH ?? "", SPOOL_MODEL_CLAUDE: "anthropic/claude-x", ANTHROPIC_API_KEY: "sk-test" };
    const checks = await runChecks({ config: loadConfig({ home: home() }, env), env });
    const line = byName(checks, "model claude").detail;
    expect(line).toContain("anthropic/claude-x at ");
    expect(line).not.toMatch(/ at\s*(\(|$)/);
  });

  it("refuses an unknown option as a usage error", async () => {
    const refused = await run(process.execPath, [join(repo, "bin", "spool.js"), "doctor", "--frobnicate"], {
      env: { ...process.env, SPOOL_HOME: home() },
    }).catch((error: { code: number; stderr: string }) => error);
    expect(refused).toMatchObject({ code: 2 });
  });
});
