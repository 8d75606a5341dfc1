import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import type { ExecSpec } from "../../src/runners/backend.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend, type LocalBackendOptions } from "../../src/runners/local/local.js";
import { ended, startProducer } from "../helpers/live-output.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * A command bubblewrap contains (a full command in a PID namespace of its own, or a sandboxed one) is started
 * ignoring the signals a client may send, which its shell gets back at their defaults once it runs inside the
 * sandbox (sandbox.ts, `launcher`): a stream/signal that comes before then must still reach the command, not be
 * ignored on the way.
 */
describeWithBwrap("a signal sent right after a contained command starts reaches it", () => {
  const cases: [string, LocalBackendOptions, (root: string) => Partial<ExecSpec>][] = [
    ["full, in a PID namespace of its own", { container: "pid-namespace" }, () => ({})],
    ["workspace-write, in the sandbox", {}, (root) => ({ sandbox: { mode: "workspace-write" }, workspace: root })],
  ];
  for (const [name, options, spec] of cases) {
    it(`${name}: INT sent at once ends the command, which would otherwise sleep until its time limit`, async () => {
      const backend = new LocalBackend({ ...options, killGraceMs: 500 });
      const root = tempDir();
      // A few times over: the window before the command runs is short.
      for (let i = 0; i < 3; i++) {
        const execution = await backend.start({
          command: "sleep 30",
          env: {},
          cwd: root,
          interactive: true,
          timeoutMs: 8_000,
          signal: new AbortController().signal,
          ...spec(root),
        });
        execution.stdout.resume();
        execution.stderr.resume();
        await execution.control!.signal("INT");
        expect(await execution.result).toMatchObject({ exitCode: null, signal: "SIGINT", timedOut: false, cancelled: false });
      }
      await backend.close();
    }, 60_000);
  }

  describe("through the server: stream/signal right after the proposal is accepted, not waiting for any output", () => {
    let ts: TestServer;
    let runner: RunnerClient;
    let client: SpoolClient;
    const project = "early-signal";
    beforeAll(async () => {
      ts = await startTestServer({ localRunner: false });
      client = await ts.clientIn(project);
      runner = new RunnerClient({
        connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
        project,
        name: "contained",
        backend: new LocalBackend({ container: "pid-namespace", killGraceMs: 500 }),
        root: tempDir(),
        default: true,
        log: createLogger("silent"),
      });
      await runner.start();
    }, 60_000);
    afterAll(async () => {
      await runner?.stop();
      await ts?.stop();
    });

    it("stream/signal INT right after accept: the command ends by it, well before its time limit", async () => {
      const p = await startProducer(client, "early", "trap 'echo trapped; exit 3' INT; while :; do sleep 0.1; done", { runner: "contained" });
      await client.signal("early", p.path, "INT");
      const { out } = await ended(client, "early", p.path, p.stdout, 20_000);
      // Either the trap ran, or the signal came before the shell had set it: never lost.
      if (out.attributes.exit_code === 3) expect(out.body).toBe("trapped\n");
      else expect(out.attributes.signal).toBe("SIGINT");
    }, 30_000);
  });
});
