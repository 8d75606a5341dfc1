import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { recordStatePaths } from "../../src/home/registry.js";
import type { ExecSpec } from "../../src/runners/backend.js";
import { StartError } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { tempDir } from "../helpers/server.js";

/**
 * Issue 37 and issue 73: nothing a command can write is read by the server at its start, and no known secret is in a
 * command's view. The server's state (its home, token file, database and its WAL) is sent with each command as a
 * check: a command whose view (its project, the paths the configuration adds) holds one, there or not there yet
 * (judged by its deepest existing ancestor's real path: a token file before its first start could be created by the
 * command), is refused and nothing runs; the sandbox never mounts over them (issue 54's covering is gone). Real
 * bubblewrap, the local backend itself.
 */
describeWithBwrap("a command whose view would hold a known secret is refused", () => {
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

  async function run(
    command: string,
    secrets: string[],
    mode: "read-only" | "workspace-write" = "workspace-write",
    using = backend,
  ): Promise<{ code: number | null; out: string }> {
    const spec: ExecSpec = { command, cwd: workspace, workspace, env: {}, sandbox: { mode, secrets }, signal: new AbortController().signal };
    const execution = await using.start(spec);
    let out = "";
    execution.stdout.on("data", (data: Buffer) => {
      out += data.toString();
    });
    execution.stderr.resume();
    const result = await execution.result;
    return { code: result.exitCode, out };
  }

  it("a missing token file or WAL inside the workspace refuses the command, and nothing is created", async () => {
    for (const secret of [join(workspace, "token"), join(workspace, "state", "spool.db-wal")]) {
      const start = run(`mkdir -p state; echo forged > ${secret}`, [secret]);
      await expect(start).rejects.toThrow(StartError);
      await expect(start).rejects.toThrow(`the command's view would hold ${secret}`);
      expect(existsSync(secret)).toBe(false);
    }
    // Through a link to the workspace too: judged by where the path really is.
    const link = join(tempDir("spool-hide-link-"), "ws");
    symlinkSync(workspace, link);
    await expect(run("true", [join(link, "token")])).rejects.toThrow(StartError);
  });

  it("a home inside the workspace refuses the command in both modes, naming it; nothing of it is read", async () => {
    const home = join(workspace, "home");
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, "token"), "secret-token\n");
    for (const mode of ["read-only", "workspace-write"] as const) {
      const start = run(`cat ${home}/token`, [home, join(home, "config.json")], mode);
      await expect(start).rejects.toThrow(`the command's view would hold ${home} (through ${workspace})`);
    }
    rmSync(home, { recursive: true });
  });

  it("a secret outside the view changes nothing: the command runs, and a missing one outside stays unwritable", async () => {
    // Outside /tmp (every sandbox has its own) and outside the view: not there for the command at all.
    const outsideDir = mkdtempSync("/var/tmp/spool-hide-outside-");
    writeFileSync(join(outsideDir, "present-token"), "secret-token\n");
    mkdirSync(join(outsideDir, "later"));
    const outside = join(outsideDir, "later", "token");
    const { code, out } = await run(
      `cat ${outsideDir}/present-token 2>/dev/null; echo "read=$?"; echo forged > ${outside} 2>/dev/null; echo "outside=$?"; echo made > made; echo "project=$?"`,
      [join(outsideDir, "present-token"), outside],
    );
    expect(code).toBe(0);
    expect(out).not.toContain("secret-token");
    expect(out).toMatch(/^read=[1-9]\d*\noutside=[1-9]\d*\nproject=0\n$/);
    expect(existsSync(outside)).toBe(false);
    rmSync(outsideDir, { recursive: true, force: true });
  });

  it("a device or system path named as state (a token file /dev/null, recorded by an older Spool) refuses nothing and takes nothing", async () => {
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
        sandbox: { mode: "workspace-write", secrets: ["/dev/null"] },
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
