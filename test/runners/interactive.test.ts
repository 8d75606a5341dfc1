import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import type { Backend } from "../../src/runners/backend.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { SshBackend } from "../../src/runners/ssh/ssh.js";
import { describeWithInfra, infra, sshHostKeys, sshKey, sshRoot } from "../helpers/infra.js";
import { ended, startProducer } from "../helpers/live-output.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const EXEC_CONTAINER = `spool-test-interactive-${process.pid}`;

interface Case {
  name: string;
  kind: "local" | "docker" | "ssh";
  make: () => Backend;
  /** The runner's --root, where the backend's default directory would not do (an SSH login's home refuses workspace-write). */
  root?: () => string;
  before?: () => void;
  after?: () => void;
}

const cases: Case[] = [
  // Sandboxed by default (workspace-write in bubblewrap where the machine has it), and without a sandbox.
  { name: "local", kind: "local", make: () => new LocalBackend({ killGraceMs: 1000 }) },
  { name: "local (no sandbox)", kind: "local", make: () => new LocalBackend({ killGraceMs: 1000, sandbox: "off" }) },
  { name: "docker (fresh container)", kind: "docker", make: () => new DockerBackend({ image: infra.dockerImage!, killGraceMs: 1000 }) },
  {
    name: "docker (exec in a running container)",
    kind: "docker",
    make: () => new DockerBackend({ container: EXEC_CONTAINER, killGraceMs: 1000 }),
    before: () => {
      execFileSync("docker", ["run", "-d", "--init", "--rm", "--network", "none", "--name", EXEC_CONTAINER, infra.dockerImage!, "sleep", "100000"]);
    },
    after: () => {
      execFileSync("docker", ["rm", "-f", EXEC_CONTAINER], { stdio: "ignore" });
    },
  },
  {
    name: "ssh",
    kind: "ssh",
    make: () =>
      new SshBackend({
        host: infra.ssh!.host,
        port: infra.ssh!.port,
        username: infra.ssh!.username,
        privateKey: sshKey(),
        hostKeys: sshHostKeys(),
        killGraceMs: 1000,
      }),
    root: () => sshRoot(),
  },
];

/** The terminal's width, by tput where the host has it (busybox has only stty). */
const COLUMNS = "tput cols 2>/dev/null || stty size | cut -d' ' -f2";

for (const c of cases) {
  describeWithInfra(c.kind, `interactive producers on ${c.name}`, () => {
    let ts: TestServer;
    let runner: RunnerClient;
    let client: SpoolClient;
    const project = `interactive-${c.name.replace(/[^a-z]+/g, "-")}`;
    beforeAll(async () => {
      c.before?.();
      ts = await startTestServer({ localRunner: false });
      client = await ts.clientIn(project);
      runner = new RunnerClient({
        connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
        project,
        name: "it",
        backend: c.make(),
        ...(c.root ? { root: c.root() } : {}),
        // The default runner: proposals are recorded in the sandbox mode it can give (full for an exec in a writable container).
        default: true,
        log: createLogger("silent"),
      });
      await runner.start();
    }, 60_000);
    afterAll(async () => {
      await runner?.stop();
      await ts?.stop();
      c.after?.();
    });
    const start = (run: string, command: string, tty?: { cols: number; rows: number }) =>
      startProducer(client, run, command, { runner: "it", ...(tty ? { tty } : {}) });

    it("a question read from stdin is answered over stream/input", async () => {
      const p = await start("read", "read x; echo got:$x");
      await client.input("read", p.path, "forty two\n");
      const { out } = await ended(client, "read", p.path, p.stdout);
      expect(out.body).toBe("got:forty two\n");
      expect(out.attributes.exit_code).toBe(0);
    });

    it("cat copies its input until stream/eof", async () => {
      const p = await start("cat", "cat");
      await client.input("cat", p.path, "one\n");
      await p.output.until("one\n");
      await client.input("cat", p.path, "two\n");
      await client.eof("cat", p.path);
      const { out, log } = await ended(client, "cat", p.path, p.stdout);
      expect(out.body).toBe("one\ntwo\n");
      expect(out.attributes.exit_code).toBe(0);
      expect(log.body).toMatch(/; stdin 8 bytes\/2 lines, stdout 8 bytes\/2 lines/);
    });

    it("a trap prints on SIGINT", async () => {
      // A shell runs its trap once its foreground sleep ends (where the INT reaches the shell alone): short sleeps.
      const p = await start("trap", "trap 'echo trapped; exit 3' INT; echo ready; while :; do sleep 0.1; done");
      await p.output.until("ready\n");
      await client.signal("trap", p.path, "INT");
      const { out } = await ended(client, "trap", p.path, p.stdout);
      expect(out.body).toBe("ready\ntrapped\n");
      expect(out.attributes.exit_code).toBe(3);
    });

    /**
     * A program that handles SIGINT, then reads one more line and exits 0: python3 where the backend has it,
     * else a shell with a trap (busybox has no python; its own sh already replaces itself with the last command).
     */
    let hasPython: Promise<boolean> | undefined;
    const handler = async (): Promise<string> => {
      // Asked once a backend: both tests below want the same answer.
      hasPython ??= start("python-probe", "command -v python3").then(async (probe) => {
        const { out } = await ended(client, "python-probe", probe.path, probe.stdout);
        return out.attributes.exit_code === 0;
      });
      if (await hasPython) {
        // "ready" is printed inside the try: a ^C that comes right after it is still the REPL's to handle.
        return `python3 -c 'import sys\ntry:\n    print("ready", flush=True)\n    line = sys.stdin.readline()\nexcept KeyboardInterrupt:\n    print("caught", flush=True)\n    line = sys.stdin.readline()\nprint("got", line.strip())'`;
      }
      return `sh -c 'trap "echo caught" INT; echo ready; read x || read x; echo got $x'`;
    };

    it("^C typed into the terminal of a program that handles it: the program goes on, and its exit 0 is the command's", async () => {
      const p = await start("ctrl-c", await handler(), { cols: 80, rows: 24 });
      await p.output.until("ready");
      await client.input("ctrl-c", p.path, "\u0003");
      await p.output.until("caught");
      await client.input("ctrl-c", p.path, "after\n");
      const { out, log } = await ended(client, "ctrl-c", p.path, p.stdout);
      expect(out.body).toMatch(/caught\r\n(?:after\r\n)?got after\r\n$/);
      expect(out.status).toBe(200);
      expect(out.attributes.exit_code).toBe(0);
      expect(out.attributes.signal ?? null).toBeNull();
      expect(log.body).not.toContain("SIGINT");
    });

    it("stream/signal INT to a program that handles it: the program goes on, and its exit 0 is the command's", async () => {
      const p = await start("sigint", await handler());
      await p.output.until("ready\n");
      await client.signal("sigint", p.path, "INT");
      await p.output.until("caught\n");
      await client.input("sigint", p.path, "after\n");
      const { out } = await ended(client, "sigint", p.path, p.stdout);
      expect(out.body).toBe("ready\ncaught\ngot after\n");
      expect(out.status).toBe(200);
      expect(out.attributes.exit_code).toBe(0);
      expect(out.attributes.signal ?? null).toBeNull();
    });

    it("a program that does not handle SIGINT still ends by it, alone or with a shell waiting for it, typed or sent", async () => {
      // "ready" comes from a running shell: a ^C sent while a shell is still starting its next program (between fork
      // and exec) can be lost in that shell (dash), whatever the runner does.
      // The four commands (each in a run of its own) run side by side: each waits on its own backend start.
      const cases = (
        [
          ["sleep-alone", "echo ready; sleep 100"],
          ["sleep-list", "sh -c 'echo ready; exec sleep 100'; echo after"],
        ] as const
      ).flatMap(([run, command]) => [false, true].map((typed) => ({ name: `${run}${typed ? "-typed" : ""}`, command, typed })));
      await Promise.all(
        cases.map(async ({ name, command, typed }) => {
          const p = await start(name, command, typed ? { cols: 80, rows: 24 } : undefined);
          await p.output.until("ready");
          if (typed) await client.input(name, p.path, "\u0003");
          else await client.signal(name, p.path, "INT");
          const { out } = await ended(client, name, p.path, p.stdout);
          expect(out.body, name).not.toContain("after");
          expect(out.status, name).toBe(500);
          expect(out.attributes, name).toMatchObject({ signal: "SIGINT" });
          expect(out.attributes.exit_code ?? null, name).toBeNull();
        }),
      );
    });

    it("under a terminal, the command sees the size stream/resize set (123 columns)", async () => {
      const p = await start("tty", `echo ready; read _; ${COLUMNS}`, { cols: 80, rows: 24 });
      await p.output.until("ready");
      expect(await client.resize("tty", p.path, { cols: 123, rows: 40 })).toEqual({ path: p.path, cols: 123, rows: 40 });
      await client.input("tty", p.path, "\n");
      const { out, log } = await ended(client, "tty", p.path, p.stdout);
      expect(out.body).toMatch(/^ready\r\n\r\n123\r\n$/);
      expect(log.attributes.tty).toEqual({ cols: 123, rows: 40 });
      const stderr = await client.call("entry/get", { run: "tty", path: p.stderr });
      expect(stderr.bytes).toBe(0);
      const view = await client.call("entry/get", { run: "tty", path: p.stdout, view: "model" });
      expect(view.body).toBe("ready\n\n123\n");
    });

    it("a shell REPL is driven for three lines, each answered before the next", async () => {
      const p = await start("repl", "sh -i 2>/dev/null");
      await client.input("repl", p.path, "x=6\n");
      await client.input("repl", p.path, "echo $((x * 7))\n");
      await p.output.until("42\n");
      await client.input("repl", p.path, "echo bye $x\n");
      await p.output.until("bye 6\n");
      await client.eof("repl", p.path);
      const { out } = await ended(client, "repl", p.path, p.stdout);
      // busybox's interactive shell prints its banner and prompts on stdout.
      expect(out.body).toMatch(/^(?:[\s\S]*# )?42\n(?:[\s\S]*# )?bye 6\n(?:[\s\S]*# )?$/);
      expect(out.status).toBe(200);
    });

    it("^D (stream/eof) ends a command reading a terminal", async () => {
      const p = await start("tty-cat", "cat; echo done", { cols: 80, rows: 24 });
      await client.input("tty-cat", p.path, "hello\n");
      await p.output.until("hello\r\nhello\r\n");
      expect(await client.eof("tty-cat", p.path)).toMatchObject({ changed: true });
      const { out } = await ended(client, "tty-cat", p.path, p.stdout);
      expect(out.body).toMatch(/done\r\n$/);
      const stdin = await client.call("entry/get", { run: "tty-cat", path: p.stdout.replace(/_1$/, "_0"), encoding: "base64" });
      expect(Buffer.from(stdin.body, "base64").toString()).toBe("hello\n\u0004");
    });

    it("input to a finished producer is STREAM_CLOSED; from another project's connection NOT_FOUND", async () => {
      const p = await start("closed", "cat");
      const stranger = await ts.clientIn("someone-else");
      await expect(stranger.input("closed", p.path, "x\n")).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
      await client.eof("closed", p.path);
      await ended(client, "closed", p.path, p.stdout);
      await expect(client.input("closed", p.path, "x\n")).rejects.toMatchObject({ data: { code: "STREAM_CLOSED" } });
    });
  });
}
