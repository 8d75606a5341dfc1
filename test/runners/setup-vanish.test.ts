import { mkdirSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { recordedStateSoon, recordStatePaths } from "../../src/home-registry.js";
import type { ExecSpec } from "../../src/runners/backend.js";
import { StartError } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { tempDir } from "../helpers/server.js";

/**
 * A sandbox whose start reads the registry of Spool homes just before one is removed (sandbox-setup.ts): bubblewrap
 * then has no mount point for what it was to cover (outside /tmp the root is read-only) and cannot set the sandbox
 * up. The command never ran; the start is set up again from a fresh pass. Made certain here: the homes go in the
 * same turn as the pass the start reads (a start asking for a pass shares the one asked for with it), before
 * bubblewrap is started. Every launcher: plain, under a terminal, with a network of its own, with an egress proxy.
 */
describeWithBwrap("a sandbox start while a Spool home it was to hide is removed", () => {
  let scratch: string;
  let workspace: string;
  let environ: NodeJS.ProcessEnv;
  let backends: Record<"once" | "again", LocalBackend>;
  beforeAll(async () => {
    scratch = realpathSync(mkdtempSync("/var/tmp/spool-setup-vanish-"));
    workspace = realpathSync(tempDir("spool-setup-vanish-ws-"));
    environ = { ...process.env, SPOOL_REGISTRY: join(scratch, "registry") };
    backends = { once: new LocalBackend({ environ, setupTries: 1 }), again: new LocalBackend({ environ }) };
    // Probed before: the start then asks for its pass within the turn it begins.
    for (const backend of Object.values(backends)) await (await backend.start(spec("true", {}))).result;
  });
  afterAll(async () => {
    for (const backend of Object.values(backends)) await backend.close();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(workspace, { recursive: true, force: true });
  });

  function spec(command: string, extra: Partial<ExecSpec> & { network?: boolean; egress?: { allow: string[] } }): ExecSpec {
    const { network = false, egress, ...rest } = extra;
    return {
      command,
      cwd: workspace,
      workspace,
      env: {},
      sandbox: { mode: "workspace-write", network, ...(egress ? { egress } : {}) },
      signal: new AbortController().signal,
      ...rest,
    };
  }

  /** Starts `command` while homes recorded now are removed in the turn its registry pass ends; what it printed, or how it failed. */
  async function startWhileRemoved(backend: LocalBackend, request: ExecSpec): Promise<string> {
    const homes = mkdtempSync(join(scratch, "homes-"));
    const paths = Array.from({ length: 8 }, (_, i) => join(homes, `home-${i}`));
    for (const path of paths) mkdirSync(path);
    recordStatePaths(paths, environ);
    const started = backend.start(request);
    void recordedStateSoon(environ).then(() => {
      for (const path of paths) rmSync(path, { recursive: true });
    });
    try {
      const execution = await started;
      let out = "";
      execution.stdout.on("data", (data: Buffer) => (out += data.toString()));
      execution.stderr.resume();
      const { exitCode } = await execution.result;
      return `exit ${exitCode}: ${out.replace(/\r/g, "")}`;
    } catch (error) {
      expect(error).toBeInstanceOf(StartError);
      return (error as Error).message;
    }
  }

  const launchers: [string, Partial<ExecSpec> & { network?: boolean; egress?: { allow: string[] } }][] = [
    ["no network", {}],
    ["under a terminal", { tty: { cols: 80, rows: 24 } }],
    ["a network of its own", { network: true }],
    ["an egress proxy", { network: true, egress: { allow: [] } }],
  ];

  it.each(launchers)("%s: set up once, it fails to start, never runs, and says which path vanished", async (_, extra) => {
    const said = await startWhileRemoved(backends.once, spec("echo ran", extra));
    expect(said).toMatch(/^Cannot start the command: the sandbox could not be set up: bwrap: .*home-\d.*vanished during its setup\)$/);
  });

  it.each(launchers)("%s: set up again, it runs once, and its output is whole", async (_, extra) => {
    expect(await startWhileRemoved(backends.again, spec("echo ran", extra))).toBe("exit 0: ran\n");
  });
});
