// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import type { Execution } from "../../src/runners/backend.js";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { SshBackend } from "../../src/runners/ssh/ssh.js";
import { describeWithInfra, infra, sshHostKeys, sshKey } from "../helpers/infra.js";
import { runTool } from "../helpers/runners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * A path the sandbox mounts swapped for a link between the runner's check and the mount (by a command of an
 * enclosing project): the start is refused on the local, SSH and Docker runners, never run where the link leads.
 */

describeWithBwrap("a project root swapped for a link after the proposal: the command is refused, not run where the link leads", () => {
  let ts: TestServer;
  let root: string;
  let elsewhere: string;
  let outer: SpoolClient;
  let inner: SpoolClient;
  beforeAll(async () => {
    ts = await startTestServer();
    // Nested projects (a monorepo and a package of it): a command of the outer one may write where the inner one's root is.
    root = realpathSync(tempDir("spool-attack-nested-"));
    mkdirSync(join(root, "app"));
    // Where the link leads: a directory no project holds (standing for ~/.config, whose systemd units a login runs, or ~/.aws).
    elsewhere = realpathSync(tempDir("spool-attack-elsewhere-"));
    mkdirSync(join(elsewhere, "systemd"));
    outer = await ts.client();
    await outer.initialize("nested-outer", { root });
    inner = await ts.client();
    await inner.initialize("nested-app", { root: join(root, "app") });
  });
  afterAll(async () => {
    await ts.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });

  for (const mode of ["sh", "env"] as const) {
    it(`${mode === "sh" ? "workspace-write" : "read-only"}: the inner project's next command does not run in the directory its root now leads to`, async () => {
      const swap = await runTool(outer, `swap-${mode}`, "sh", `mv app app.real && ln -s ${elsewhere} app && echo swapped`);
      expect(swap.out).toBe("swapped\n");
      try {
        const done = await runTool(inner, `planted-${mode}`, mode, "ls; touch systemd/planted.service; echo ran");
        expect(done.out).not.toContain("ran");
        expect(existsSync(join(elsewhere, "systemd", "planted.service"))).toBe(false);
        expect(done.stdout.status).toBe(ENTRY.cancelled);
        expect(JSON.stringify(done.log)).toContain(`the project root ${join(root, "app")} resolves to ${elsewhere}`);
      } finally {
        rmSync(join(root, "app"));
        renameSync(join(root, "app.real"), join(root, "app"));
      }
    });
  }
});

describeWithBwrap("a path of the view swapped for a link while the sandbox is built: what is mounted is what was checked", () => {
  // A command of an enclosing project (a monorepo and a package of it) swaps the inner project's root for a link and
  // back, over and over, while the inner project's commands start: each start judges the path, then bubblewrap mounts
  // it. Whatever the timing, a command sees what was checked or does not start.
  let base: string;
  let outer: string;
  let inner: string;
  let elsewhere: string;
  let backend: LocalBackend;
  beforeAll(() => {
    base = realpathSync(mkdtempSync("/var/tmp/spool-attack-race-"));
    outer = join(base, "outer");
    inner = join(outer, "app");
    // Where the link leads: a directory no project holds (standing for the home), with a secret in it.
    elsewhere = join(base, "elsewhere");
    mkdirSync(inner, { recursive: true });
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, "secret"), "race-secret-73\n", { mode: 0o600 });
    symlinkSync(elsewhere, join(outer, "link"));
    backend = new LocalBackend({ killGraceMs: 200 });
  });
  afterAll(async () => {
    await backend.close();
    rmSync(base, { recursive: true, force: true });
  });

  const start = (command: string, workspace: string, signal: AbortSignal) =>
    backend.start({ command, cwd: workspace, workspace, env: {}, sandbox: { mode: "workspace-write", network: false }, signal });
  /**
   * Runs `command` in the inner project through `inner` (a runner's start) up to `tries` times while the outer project's
   * command swaps the root and a link to `elsewhere` in turn, each `ms` milliseconds (perl's renames, no process each);
   * the outputs of those that ran, and the refusals. Stops at the first output holding the secret.
   */
  /** What a started command printed on stdout, once it ended. */
  const output = async (execution: Execution) => {
    let out = "";
    execution.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    execution.stderr.resume();
    await execution.result;
    return out;
  };
  const race = async (inner: (command: string) => Promise<Execution>, ms: number, tries: number) => {
    const stop = new AbortController();
    const swap = `perl -MTime::HiRes=sleep -e 'while (1) { rename "app", "real"; rename "link", "app"; sleep ${ms / 1000}; rename "app", "link"; rename "real", "app"; sleep ${ms / 1000} }'`;
    const swapper = await start(swap, outer, stop.signal);
    swapper.stdout.resume();
    swapper.stderr.resume();
    const outs: string[] = [];
    const refusals: string[] = [];
    try {
      for (let i = 0; i < tries && !outs.join("").includes("race-secret-73"); i++) {
        const execution = await inner("cat secret 2>/dev/null; echo ran").catch((error: unknown) => {
          refusals.push(String(error));
          return null;
        });
        if (execution) outs.push(await output(execution));
      }
    } finally {
      stop.abort();
      await swapper.result;
      // Back as it was, wherever the swap stopped.
      if (existsSync(join(outer, "real"))) {
        if (lstatSync(join(outer, "app"), { throwIfNoEntry: false })) renameSync(join(outer, "app"), join(outer, "link"));
        renameSync(join(outer, "real"), join(outer, "app"));
      }
    }
    return { outs, refusals };
  };

  it("local: the project root, swapped for a link to another directory, is never mounted in its place", async () => {
    const { outs, refusals } = await race((command) => start(command, inner, new AbortController().signal), 4, 200);
    expect(outs.join("")).not.toContain("race-secret-73");
    // A start that did not run was refused for what it found: the root a link, not there, or (inside the sandbox, after
    // bubblewrap mounted it) not what was checked.
    for (const refusal of refusals) expect(refusal).toContain("StartError: Cannot start the command: ");
  }, 120_000);

  describeWithBwrap("the SSH runner (this machine's sshd and bubblewrap, another user)", () =>
    describeWithInfra("ssh", "the SSH runner", () => {
      let ssh: SshBackend;
      beforeAll(() => {
        ssh = new SshBackend({ host: infra.ssh!.host, port: infra.ssh!.port, username: infra.ssh!.username, privateKey: sshKey(), hostKeys: sshHostKeys() });
        // The login may enter the projects and read the file beside the link's end, as it may a home's it can read.
        for (const dir of [base, outer, inner, elsewhere]) chmodSync(dir, 0o777);
        chmodSync(join(elsewhere, "secret"), 0o644);
      });
      afterAll(async () => {
        await ssh?.close();
      });

      it("SSH: the project root, swapped for a link between the remote check and bubblewrap's mount, is refused inside; nothing else runs", async () => {
        const inInner = (command: string) =>
          ssh.start({
            command,
            cwd: inner,
            workspace: inner,
            env: {},
            sandbox: { mode: "workspace-write", network: false, view: { toolchains: [], read: [], write: [] } },
            signal: new AbortController().signal,
          });
        const { outs } = await race(inInner, 20, 60);
        expect(outs.join("")).not.toContain("race-secret-73");
        for (const out of outs) expect(out === "ran\n" || out === "", out).toBe(true);
        // Left alone, the root passes the check and the command runs.
        expect(await output(await inInner("echo ran"))).toBe("ran\n");
      }, 300_000);
    }),
  );

  describeWithInfra("docker", "the Docker runner", () => {
    let docker: DockerBackend;
    beforeAll(() => {
      docker = new DockerBackend({ image: infra.dockerImage!, mountProject: true });
    });
    afterAll(async () => {
      await docker?.close();
    });

    it("Docker: the project root, swapped for a link between the runner's check and the engine's mount, is refused inside; nothing else runs", async () => {
      // A container takes longer to start: the root and the link 50 ms each.
      const inInner = (command: string) =>
        docker.start({
          command,
          cwd: inner,
          project: { root: inner, cwd: "" },
          env: {},
          sandbox: { mode: "workspace-write", network: false },
          signal: new AbortController().signal,
        });
      const { outs } = await race(inInner, 50, 40);
      expect(outs.join("")).not.toContain("race-secret-73");
      // What ran either ran in the project or said why it did not.
      for (const out of outs) expect(out === "ran\n" || out === "", out).toBe(true);
      // Left alone, the root passes the check and the command runs.
      expect(await output(await inInner("echo ran"))).toBe("ran\n");
    }, 300_000);
  });
});

describe("a project root that is a link now: the SSH and the Docker runner refuse it too", () => {
  /** A project directory, and a link to another directory standing where a root was. */
  function swapped(prefix: string): { root: string; elsewhere: string; remove: () => void } {
    const base = realpathSync(mkdtempSync(`/var/tmp/${prefix}`));
    chmodSync(base, 0o777);
    const elsewhere = join(base, "elsewhere");
    mkdirSync(elsewhere, { mode: 0o777 });
    chmodSync(elsewhere, 0o777);
    symlinkSync(elsewhere, join(base, "app"));
    return { root: join(base, "app"), elsewhere, remove: () => rmSync(base, { recursive: true, force: true }) };
  }
  const spec = (root: string, mode: "read-only" | "workspace-write") => ({
    command: "touch planted; echo ran",
    cwd: root,
    workspace: root,
    project: { root, cwd: "" },
    env: {},
    sandbox: { mode, network: false, view: { toolchains: [], read: [], write: [] } },
    signal: new AbortController().signal,
  });
  const outcome = async (start: Promise<{ stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream; result: Promise<unknown> }>) => {
    let out = "";
    let err = "";
    const said = await start.then(
      async (execution) => {
        execution.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
        execution.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
        await execution.result;
        return "";
      },
      (error: unknown) => String(error),
    );
    return { out, said: said + err };
  };

  /** What every backend is held to: the command does not run, the refusal names where the root leads, nothing is written there. */
  const refusesLinkedRoot = async (backend: SshBackend | DockerBackend, prefix: string, mode: "read-only" | "workspace-write") => {
    const { root, elsewhere, remove } = swapped(prefix);
    try {
      const { out, said } = await outcome(backend.start(spec(root, mode)));
      expect(out).not.toContain("ran");
      expect(said).toContain(`the project root ${root} resolves to ${elsewhere}`);
      expect(existsSync(join(elsewhere, "planted"))).toBe(false);
    } finally {
      await backend.close();
      remove();
    }
  };

  describeWithBwrap("ssh", () =>
    describeWithInfra("ssh", "the SSH runner", () => {
      for (const mode of ["read-only", "workspace-write"] as const) {
        it(`${mode}: refused, naming where the root leads; nothing is written there`, () =>
          refusesLinkedRoot(
            new SshBackend({ host: infra.ssh!.host, port: infra.ssh!.port, username: infra.ssh!.username, privateKey: sshKey(), hostKeys: sshHostKeys() }),
            "spool-attack-ssh-link-",
            mode,
          ));
      }
    }),
  );

  describeWithInfra("docker", "the Docker runner", () => {
    for (const mode of ["read-only", "workspace-write"] as const) {
      it(`${mode}: refused, naming where the root leads; nothing is written there`, () =>
        refusesLinkedRoot(new DockerBackend({ image: infra.dockerImage!, mountProject: true }), "spool-attack-docker-link-", mode));
    }
  });
});
