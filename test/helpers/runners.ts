// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import type { SpoolClient } from "../../src/client/spool-client.js";
import { eventually } from "./server.js";

/** Proposes `command` in `run` and accepts it (for `runner`, or the default/embedded one); returns the paths. */
export async function acceptCommand(proposer: SpoolClient, acceptor: SpoolClient, run: string, command: string, runner?: string) {
  await proposer.request("run/create", { alias: run }).catch(() => undefined);
  const { path } = await proposer.request("proposal/create", { run, tool: "sh", command });
  const resolved = await acceptor.request("run/resolve", { run, path, decision: "accept", ...(runner ? { runner } : {}) });
  const [stdout, stderr] = resolved.channels.map((c: { path: string }) => c.path) as [string, string];
  return { path, stdout, stderr, resolved };
}

/** Waits until the producer's channels have left 102; returns each channel's entry (body as base64) and the log. */
export async function finished(client: SpoolClient, run: string, paths: { path: string; stdout: string; stderr: string }, timeoutMs = 30_000) {
  await eventually(async () => (await client.request("entry/get", { run, path: paths.stdout, tail: 1 })).status !== 102, timeoutMs, `${paths.path} to finish`);
  const get = (path: string) => client.request("entry/get", { run, path, encoding: "base64" });
  const [log, stdout, stderr] = await Promise.all([client.request("entry/get", { run, path: paths.path }), get(paths.stdout), get(paths.stderr)]);
  return { log, stdout, stderr, out: Buffer.from(stdout.body, "base64"), err: Buffer.from(stderr.body, "base64") };
}

/** Waits until the runner has reported where the process runs (log attribute `process`). */
export async function processOf(client: SpoolClient, run: string, path: string): Promise<{ backend: string; pid?: number; container?: string }> {
  let target: any;
  await eventually(
    async () => {
      target = (await client.request("entry/get", { run, path })).attributes.process;
      return Boolean(target && (target.pid || target.container));
    },
    15_000,
    "the runner to report its process",
  );
  return target;
}
