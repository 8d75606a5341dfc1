import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { tempDir } from "../helpers/server.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

describe("the server's log", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const dir = () => {
    const d = tempDir("spool-logs-");
    dirs.push(d);
    return d;
  };
  const lines = (file: string) =>
    readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it("--log-format json: one object a line, with time, level, message and the context's fields; the file 0600 even if it was not", () => {
    const file = join(dir(), "spool.log");
    writeFileSync(file, "", { mode: 0o644 });
    const log = createLogger("info", { file, format: "json" });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    log.debug("not at info");
    log.info("rule matched", { project: "p", run: "r1", path: "sh/1/ls", principal: "alice", rule: 3 });
    log.error("failed", new Error("boom"));
    log.warn("plain");
    const [info, error, warn] = lines(file);
    expect(lines(file)).toHaveLength(3);
    expect(info).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      level: "info",
      message: "rule matched",
      project: "p",
      run: "r1",
      path: "sh/1/ls",
      principal: "alice",
      data: { rule: 3 },
    });
    expect(error).toMatchObject({ level: "error", message: "failed", error: expect.stringContaining("Error: boom") });
    expect(warn).toEqual({ time: expect.any(String), level: "warn", message: "plain" });
  });

  it("a new log file is created 0600 in either format", () => {
    const d = dir();
    createLogger("info", { file: join(d, "text.log") }).info("x");
    createLogger("info", { file: join(d, "json.log"), format: "json" }).info("x");
    expect(statSync(join(d, "text.log")).mode & 0o777).toBe(0o600);
    expect(statSync(join(d, "json.log")).mode & 0o777).toBe(0o600);
  });

  it("spool serve --log-format json --log-file writes JSON lines to a 0600 file; an unknown format is a usage error", async () => {
    const d = dir();
    const file = join(d, "serve.log");
    const server: ChildProcess = spawn(
      process.execPath,
      [join(repo, "bin", "spool.js"), "serve", "--home", join(d, "home"), "--port", "0", "--no-local-runner", "--log-format", "json", "--log-file", file],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let out = "";
        server.stdout!.on("data", (data: Buffer) => {
          out += data.toString();
          if (out.includes("Spool listening on")) resolve();
        });
        server.once("exit", (code) => reject(new Error(`spool serve exited with ${code}: ${out}`)));
      });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const logged = lines(file);
      expect(logged.length).toBeGreaterThan(0);
      expect(logged.find((l) => String(l.message).startsWith("database: applied"))).toMatchObject({ level: "info", time: expect.any(String) });
    } finally {
      server.kill("SIGTERM");
      await new Promise((resolve) => (server.exitCode === null ? server.once("exit", resolve) : resolve(null)));
    }
    const refused = await run(process.execPath, [join(repo, "bin", "spool.js"), "serve", "--home", join(d, "home"), "--log-format", "xml"]).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused).toMatchObject({ code: 2 });
    expect((refused as { stderr: string }).stderr).toContain('--log-format must be one of text, json, got "xml"');
  });
});
