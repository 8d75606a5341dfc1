import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { recordedStateSoon, recordStatePaths } from "../../src/home/registry.js";
import type { ExecSpec } from "../../src/runners/backend.js";
import { StartError } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { localToolchains } from "../../src/runners/sandbox/view.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { tempDir } from "../helpers/server.js";

/**
 * A sandbox's start while what it reads goes away (sandbox-setup.ts). The registry of Spool homes is a check (a
 * recorded home in a command's view refuses it), never a mount: homes removed between the start's pass over it and
 * bubblewrap's mounts change nothing. A path the configuration adds that is removed meanwhile is left out, as one that
 * was never there (`--ro-bind-try`); a project root removed meanwhile fails the start, saying so: the command never
 * ran. Made certain here: the paths go in the same turn
 * as the registry's pass the start reads, after the start resolved them, before bubblewrap is started. Every
 * launcher: plain, under a terminal, with a network of its own, with an egress proxy.
 */
describeWithBwrap("a sandbox start while what it reads is removed", () => {
  let scratch: string;
  let workspace: string;
  let environ: NodeJS.ProcessEnv;
  let backend: LocalBackend;
  beforeAll(async () => {
    scratch = realpathSync(mkdtempSync("/var/tmp/spool-setup-vanish-"));
    workspace = realpathSync(tempDir("spool-setup-vanish-ws-"));
    environ = { ...process.env, SPOOL_REGISTRY: join(scratch, "registry") };
    backend = new LocalBackend({ environ });
    // Probed before: the start then asks for its pass within the turn it begins.
    await (await backend.start(spec("true", {}))).result;
  });
  afterAll(async () => {
    await backend.close();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(workspace, { recursive: true, force: true });
  });

  type Extra = Partial<ExecSpec> & { network?: boolean; egress?: { allow: string[] }; read?: string[] };
  function spec(command: string, extra: Extra, root = workspace): ExecSpec {
    const { network = false, egress, read = [], ...rest } = extra;
    return {
      command,
      cwd: root,
      workspace: root,
      env: {},
      // No toolchain but node's own where the egress forwarder needs it (as the runner's probe gives it: under a home
      // when node is installed there, as the test tools' Node 22 and 24 are).
      sandbox: {
        mode: "workspace-write",
        network,
        view: { toolchains: egress ? localToolchains({ PATH: "" }) : [], read, write: [] },
        ...(egress ? { egress } : {}),
      },
      signal: new AbortController().signal,
      ...rest,
    };
  }

  /** Starts `request` while `paths` are removed in the turn its registry pass ends; what it printed, or how it failed. */
  async function startWhileRemoved(request: ExecSpec, paths: string[]): Promise<string> {
    const started = backend.start(request);
    void recordedStateSoon(environ).then(() => {
      for (const path of paths) rmSync(path, { recursive: true, force: true });
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

  const launchers: [string, Extra][] = [
    ["no network", {}],
    ["under a terminal", { tty: { cols: 80, rows: 24 } }],
    ["a network of its own", { network: true }],
    ["an egress proxy", { network: true, egress: { allow: [] } }],
  ];

  it.each(launchers)("%s: recorded homes removed meanwhile change nothing; it runs once, its output whole", async (_, extra) => {
    const homes = mkdtempSync(join(scratch, "homes-"));
    const paths = Array.from({ length: 8 }, (_, i) => join(homes, `home-${i}`));
    for (const path of paths) mkdirSync(path);
    recordStatePaths(paths, environ);
    expect(await startWhileRemoved(spec("echo ran", extra), paths)).toBe("exit 0: ran\n");
  });

  it.each(launchers)("%s: a configured read path removed meanwhile is left out; it runs", async (_, extra) => {
    const read = mkdtempSync(join(scratch, "read-"));
    writeFileSync(join(read, "file"), "x\n");
    expect(await startWhileRemoved(spec(`echo ran; ls ${read} 2>/dev/null | wc -l`, { ...extra, read: [read] }), [read])).toBe("exit 0: ran\n0\n");
  });

  it.each(launchers)("%s: its project root removed meanwhile: the start fails, saying why; nothing ran", async (_, extra) => {
    const root = realpathSync(mkdtempSync(join(scratch, "root-")));
    const said = await startWhileRemoved(spec("echo ran", extra, root), [root]);
    // The runner finds the root gone as it reads what it binds, or the launcher starts in the command's directory (gone:
    // the start fails there), or bubblewrap finds nothing to bind.
    expect(said).toMatch(
      /^Cannot start the command: (the project root \S+ is not there|its directory \S+ or the project root is not there|The "cwd" option is invalid|cwd \S+ is not a directory|the sandbox could not be set up: bwrap: )/,
    );
  });
});
