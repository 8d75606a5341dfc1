import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { recordStatePaths } from "../../src/home-registry.js";
import type { ExecSpec } from "../../src/runners/backend.js";
import { StartError } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { tempDir } from "../helpers/server.js";

/**
 * Issue 37: nothing a command can write is read by the server at its start. bubblewrap hides only what exists (a
 * file under /dev/null, a directory under an empty tmpfs): a path to hide that is not there yet (a token file
 * before its first start, a database's WAL once the server closed it) inside the writable workspace would be
 * created by the command on the host. Such a command is refused; a missing path outside the workspace stays
 * unwritable (read-only everywhere but the workspace). Real bubblewrap, the local backend itself.
 */
describeWithBwrap("workspace-write and the paths to hide that are not there yet", () => {
  let workspace: string;
  let backend: LocalBackend;
  beforeAll(() => {
    workspace = realpathSync(tempDir("spool-hide-missing-"));
    backend = new LocalBackend();
  });
  afterAll(async () => {
    await backend.close();
    rmSync(workspace, { recursive: true, force: true });
  });

  async function run(command: string, hide: string[]): Promise<{ code: number | null; out: string }> {
    const spec: ExecSpec = { command, cwd: workspace, workspace, env: {}, sandbox: { mode: "workspace-write", hide }, signal: new AbortController().signal };
    const execution = await backend.start(spec);
    let out = "";
    execution.stdout.on("data", (data: Buffer) => {
      out += data.toString();
    });
    execution.stderr.resume();
    const result = await execution.result;
    return { code: result.exitCode, out };
  }

  it("a missing token file or WAL inside the workspace refuses the command, and nothing is created", async () => {
    for (const hidden of [join(workspace, "token"), join(workspace, "state", "spool.db-wal")]) {
      const start = run(`mkdir -p state; echo forged > ${hidden}`, [hidden]);
      await expect(start).rejects.toThrow(StartError);
      await expect(start).rejects.toThrow(`${hidden}, which the sandbox must hide`);
      expect(existsSync(hidden)).toBe(false);
    }
    // Through a link to the workspace too: judged by where the path really is.
    const link = join(tempDir("spool-hide-link-"), "ws");
    symlinkSync(workspace, link);
    await expect(run("true", [join(link, "token")])).rejects.toThrow(StartError);
  });

  it("a missing path inside a hidden directory that exists (the home's config.json) is covered by hiding that directory", async () => {
    const home = join(workspace, "home");
    mkdirSync(home, { recursive: true });
    const config = join(home, "config.json");
    const { code, out } = await run(`echo forged > ${config} 2>/dev/null; echo "config=$?"`, [home, config]);
    expect(code).toBe(0);
    // Written, if at all, into the empty directory the sandbox put over the home: never on the host.
    expect(out).toMatch(/^config=\d+\n$/);
    expect(existsSync(config)).toBe(false);
  });

  it("the same path once there is covered (the command reads nothing of it), and a missing one outside the workspace stays unwritable", async () => {
    const present = join(workspace, "present-token");
    writeFileSync(present, "secret-token\n");
    // Outside /tmp (every sandbox has its own): a write that fails fails for being read-only.
    const outsideDir = mkdtempSync("/var/tmp/spool-hide-outside-");
    mkdirSync(join(outsideDir, "later"));
    const outside = join(outsideDir, "later", "token");
    const { code, out } = await run(
      `cat ${present}; echo "read=$?"; echo forged > ${outside} 2>/dev/null; echo "outside=$?"; echo made > made; echo "project=$?"`,
      [present, outside],
    );
    expect(code).toBe(0);
    expect(out).not.toContain("secret-token");
    expect(out).toMatch(/^read=\d+\noutside=[1-9]\d*\nproject=0\n$/);
    expect(existsSync(outside)).toBe(false);
    expect(readFileSync(present, "utf8")).toBe("secret-token\n");
    rmSync(outsideDir, { recursive: true, force: true });
  });

  it("a device named as state (a token file /dev/null, recorded by an older Spool) is not covered: the command keeps /dev/null", async () => {
    const registry = join(tempDir("spool-hide-device-"), "registry");
    const environ = { ...process.env, SPOOL_REGISTRY: registry };
    recordStatePaths(["/dev/null", "/dev/zero", "/proc/self/environ", "/run/spool.sock", "/usr"], environ);
    // As a Spool before the fix wrote it: the entry is named by the path's digest and holds the path.
    writeFileSync(join(registry, createHash("sha256").update("/dev/null").digest("hex").slice(0, 32)), "/dev/null");
    const devices = new LocalBackend({ environ });
    try {
      const spec: ExecSpec = {
        command: "cat /dev/null && echo x > /dev/null && head -c 4 /dev/zero | wc -c && ls /usr/bin | grep -cx sh",
        cwd: workspace,
        workspace,
        env: {},
        sandbox: { mode: "workspace-write", hide: ["/dev/null", "/usr", "/etc"] },
        signal: new AbortController().signal,
      };
      const execution = await devices.start(spec);
      let out = "";
      let err = "";
      execution.stdout.on("data", (data: Buffer) => (out += data.toString()));
      execution.stderr.on("data", (data: Buffer) => (err += data.toString()));
      const result = await execution.result;
      expect({ code: result.exitCode, out, err }).toEqual({ code: 0, out: "4\n1\n", err: "" });
    } finally {
      await devices.close();
    }
  });
});
