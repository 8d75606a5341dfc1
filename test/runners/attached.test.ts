import { createHash } from "node:crypto";
import Docker from "dockerode";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { closeSshOutside, describeWithInfra, infra, sshOutside, sshRunnerFlags } from "../helpers/infra.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { finished, processOf } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

type Target = { backend: string; pid?: number; container?: string };

interface Case {
  kind: "local" | "docker" | "ssh";
  flags: () => string[];
  alive: (target: Target) => Promise<boolean>;
  /** Kills what a SIGKILLed runner left behind. */
  reap: (target: Target) => Promise<void>;
}

const docker = new Docker();

const localAlive = async ({ pid }: Target) => {
  try {
    process.kill(pid!, 0);
    return true;
  } catch {
    return false;
  }
};

const cases: Case[] = [
  {
    kind: "local",
    flags: () => ["--backend", "local"],
    alive: localAlive,
    reap: async ({ pid }) => {
      try {
        process.kill(-pid!, "SIGKILL");
      } catch {
        // already gone
      }
    },
  },
  {
    kind: "docker",
    flags: () => ["--backend", "docker", "--image", infra.dockerImage!],
    alive: async ({ container }) => {
      try {
        return Boolean((await docker.getContainer(container!).inspect()).State.Running);
      } catch {
        return false;
      }
    },
    reap: async ({ container }) => {
      await docker
        .getContainer(container!)
        .remove({ force: true })
        .catch(() => undefined);
    },
  },
  {
    kind: "ssh",
    flags: () => sshRunnerFlags(),
    // Asked outside the backend's commands: each has a PID namespace of its own there.
    alive: async ({ pid }) => (await sshOutside(`kill -0 ${pid} 2>/dev/null`)) === 0,
    reap: async ({ pid }) => {
      await sshOutside(`kill -KILL -- -${pid} 2>/dev/null || true`);
    },
  },
];

for (const c of cases) {
  describeWithInfra(c.kind, `an attached ${c.kind} runner (spool runner process)`, () => {
    let ts: TestServer;
    /** The runner of the tests; undefined once a test killed it, until the next test starts another. */
    let runner: RunnerProcess | undefined;
    let proposer: SpoolClient;
    let acceptor: SpoolClient;
    let canceller: SpoolClient;
    const project = `attached-${c.kind}`;
    const name = `${c.kind}-box`;
    const runnerArgs = () => [
      "--server",
      ts.server.url,
      "--token-file",
      ts.server.config.tokenFile,
      "--project",
      project,
      "--name",
      name,
      "--kill-grace",
      "1000",
      ...c.flags(),
    ];

    beforeAll(async () => {
      // Nothing here comes back within the grace: the killed runner is gone for good, its channels ended when it ends.
      ts = await startTestServer({ localRunner: false, runnerGraceMs: 250 });
      proposer = await ts.clientIn(project);
      acceptor = await ts.clientIn(project);
      canceller = await ts.clientIn(project);
    });
    beforeEach(async () => {
      runner ??= await spawnRunner(runnerArgs());
    });
    afterAll(async () => {
      await runner?.stop();
      await ts?.stop();
    });

    it("runs the accepted command: stdout and stderr apart, in order, intact, with the exit code", async () => {
      const command = "for i in 1 2 3; do echo out$i; echo err$i >&2; done; yes spool-output-line | head -c 1000000; printf '\\303\\251\\000\\377'; exit 3";
      const paths = await proposeAndAccept(proposer, acceptor, "run-1", command, { runner: name });
      const done = await finished(proposer, "run-1", paths);
      const expected = Buffer.concat([
        Buffer.from("out1\nout2\nout3\n"),
        Buffer.from("spool-output-line\n".repeat(Math.ceil(1_000_000 / 18))).subarray(0, 1_000_000),
        Buffer.from([0xc3, 0xa9, 0x00, 0xff]),
      ]);
      expect(createHash("sha256").update(done.out).digest("hex")).toBe(createHash("sha256").update(expected).digest("hex"));
      expect(done.err.toString()).toBe("err1\nerr2\nerr3\n");
      expect(done.stdout.status).toBe(ENTRY.failed);
      expect(done.stdout.attributes.exit_code).toBe(3);
      expect(done.log.body).toMatch(/→ exit 3/);
      const listed = (await proposer.call("runner/list", {})).runners;
      expect(listed).toEqual([expect.objectContaining({ name, backend: c.kind, embedded: false })]);
    }, 60_000);

    it("exit 127 for a missing command", async () => {
      const paths = await proposeAndAccept(proposer, acceptor, "run-2", "no-such-command-anywhere", { runner: name });
      const done = await finished(proposer, "run-2", paths);
      expect(done.stdout.attributes.exit_code).toBe(127);
      expect(done.stdout.status).toBe(ENTRY.failed);
    });

    it("stream/cancel from a client that neither proposed nor accepted kills the process; channels end 499", async () => {
      const paths = await proposeAndAccept(proposer, acceptor, "run-3", "echo started; sleep 300; echo never", { runner: name });
      const target = await processOf(proposer, "run-3", paths.path);
      await eventually(async () => (await proposer.call("entry/get", { run: "run-3", path: paths.stdout })).bytes > 0, 10_000, "output");
      expect(await c.alive(target)).toBe(true);
      const cancelled = await canceller.call("stream/cancel", { run: "run-3", path: paths.path, reason: "changed my mind" });
      expect(cancelled.status).toBe(ENTRY.cancelled);
      await eventually(async () => !(await c.alive(target)), 5_000, "the process to be gone");
      const done = await finished(proposer, "run-3", paths);
      expect(done.out.toString()).toBe("started\n");
      expect(done.stdout.status).toBe(ENTRY.cancelled);
      expect(done.stdout.attributes.reason).toBe("changed my mind");
    }, 30_000);

    it('a runner killed mid-stream ends its channels as 499 "runner lost" after the grace', async () => {
      const paths = await proposeAndAccept(proposer, acceptor, "run-4", "while true; do echo tick; sleep 0.05; done", { runner: name });
      const target = await processOf(proposer, "run-4", paths.path);
      await eventually(async () => (await proposer.call("entry/get", { run: "run-4", path: paths.stdout })).bytes > 0, 10_000, "output");
      await runner!.stop("SIGKILL");
      runner = undefined;
      try {
        const done = await finished(proposer, "run-4", paths, 15_000);
        expect(done.stdout.status).toBe(ENTRY.cancelled);
        expect(done.stdout.attributes.reason).toBe("runner lost");
        expect(done.out.toString()).toMatch(/^(tick\n)+$/);
      } finally {
        await c.reap(target);
      }
    }, 40_000);
  });
}

afterAll(() => {
  closeSshOutside();
});
