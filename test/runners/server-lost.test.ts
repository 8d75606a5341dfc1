import { afterAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { RunnerClient, stopBeforeServer } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { processOf, untilFinished } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Issue 54, point 6: a runner that loses its server stops its commands before the server's grace ends (after it,
 * every client is told they were aborted). A command kept writing into the project for 40 s after that.
 */
const GRACE_MS = 600;
const runners: RunnerClient[] = [];
const servers: TestServer[] = [];
afterAll(async () => {
  for (const r of runners) await r.stop();
  for (const s of servers) await s.stop();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it("a runner whose server is gone stops its command (checked by pid) within the server's grace", async () => {
  const home = tempDir();
  const ts = await startTestServer({ home, localRunner: false, runnerGraceMs: GRACE_MS });
  let server = ts.server;
  const runner = new RunnerClient({
    connect: () => SpoolClient.connect(server.url, { token: server.token }),
    project: "lost",
    name: "box",
    backend: new LocalBackend({ killGraceMs: 200 }),
    log: createLogger("silent"),
    backoffMs: { min: 50, max: 200 },
  });
  runners.push(runner);
  const client = await ts.clientIn("lost");
  await runner.start();
  const paths = await proposeAndAccept(client, client, "r", "sleep 300", { runner: "box", sandbox: "full" });
  const { pid } = await processOf(client, "r", paths.path);
  expect(alive(pid!)).toBe(true);
  const lostAt = Date.now();
  await ts.stop();
  await eventually(() => !alive(pid!), GRACE_MS + 10_000, "the command to be stopped");
  // Stopped from the runner's side, before the server's grace would have ended (plus the kill and this machine's load).
  expect(Date.now() - lostAt).toBeGreaterThanOrEqual(stopBeforeServer(GRACE_MS) - 50);

  // The server back (the same home, on a port of its own): the runner reports the command's end there, so its stop
  // has nothing left to wait for (without a server it waits 5 s for its commands' ends to be told).
  const back = await startTestServer({ home, localRunner: false, runnerGraceMs: GRACE_MS });
  servers.push(back);
  server = back.server;
  await untilFinished(await back.clientIn("lost"), "r", paths.path, paths.stdout, 10_000);
});

it("the runner stops its commands before the server's grace ends, leaving the kill its own", () => {
  expect(stopBeforeServer(30_000)).toBe(25_000);
  expect(stopBeforeServer(2_000)).toBe(1_000);
});
