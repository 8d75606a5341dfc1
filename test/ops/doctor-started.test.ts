import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import type { Check } from "../../src/ops/doctor.js";
import { infra, infraRequired, unset } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { freePort, SPOOL_BIN, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

const run = promisify(execFile);
const byName = (checks: Check[], name: string) => checks.find((c) => c.name === name);
const postgresMissing = infra.postgresUrl ? null : unset("SPOOL_TEST_POSTGRES_URL");

/**
 * Issue 48, point 8: `spool doctor` describes the server that runs for the home as it was started (`serve --port …
 * --database postgres://… --demo-model`), read from what that server wrote; it does not check spool.db, probe the
 * configured port, nor say "none" for the models.
 */
describe("spool doctor and the server running for the home", () => {
  it("describes a serve --port --database postgres --demo-model server as it was started", async (ctx) => {
    if (postgresMissing) {
      if (infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${postgresMissing}`);
      return ctx.skip();
    }
    const home = join(tempDir("spool-doctor-started-"), "home");
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const database = await freshDatabase();
    const port = await freePort();
    const server = await spawnServe(["--home", home, "--port", String(port), "--database", database.url, "--demo-model"], { SPOOL_LOCAL_RUNNER: "off" });
    try {
      const env = { ...process.env, SPOOL_HOME: home, SPOOL_PORT: "", SPOOL_DATABASE_URL: "", SPOOL_DEMO_MODEL: "" };
      const { stdout } = await run(process.execPath, [SPOOL_BIN, "doctor", "--json"], { env });
      const { checks } = JSON.parse(stdout) as { checks: Check[] };
      expect(byName(checks, "database")).toMatchObject({ data: { url: expect.stringMatching(/^postgres(ql)?:\/\//) } });
      expect(existsSync(join(home, "spool.db"))).toBe(false);
      expect(byName(checks, "transport")?.data).toMatchObject({ port });
      expect(byName(checks, "server")).toMatchObject({ status: "ok", data: { url: `http://127.0.0.1:${port}`, ready: true } });
      expect(byName(checks, "models")).toBeUndefined();
      expect(byName(checks, "model demo")).toMatchObject({ status: "ok" });
      // Its human form says the same.
      const human = await run(process.execPath, [SPOOL_BIN, "doctor"], { env });
      expect(human.stdout).not.toMatch(/models\s+none/);
      expect(human.stdout).toContain(`127.0.0.1:${port}`);
    } finally {
      await server.stop();
      await database.drop();
    }
    // Stopped, it takes its facts with it: doctor describes the configuration again, with --port and --database.
    expect(existsSync(join(home, "server.json"))).toBe(false);
    const { stdout } = await run(process.execPath, [SPOOL_BIN, "doctor", "--json", "--port", "7450", "--database", "postgres://spool@127.0.0.1:5999/x"], {
      env: { ...process.env, SPOOL_HOME: home },
    }).catch((error: { stdout: string }) => error);
    const { checks } = JSON.parse(stdout) as { checks: Check[] };
    expect(byName(checks, "transport")?.data).toMatchObject({ port: 7450 });
    expect(byName(checks, "database")?.data).toMatchObject({ url: "postgres://spool@127.0.0.1:5999/x" });
    expect(byName(checks, "server")).toMatchObject({ status: "info" });
  }, 120_000);

  it("refuses a bad --port or --database as a usage error", async () => {
    const env = { ...process.env, SPOOL_HOME: tempDir("spool-doctor-bad-") };
    await expect(run(process.execPath, [SPOOL_BIN, "doctor", "--port", "x"], { env })).rejects.toMatchObject({ code: 2 });
    await expect(run(process.execPath, [SPOOL_BIN, "doctor", "--database", "mysql://a"], { env })).rejects.toMatchObject({ code: 2 });
  });
});
