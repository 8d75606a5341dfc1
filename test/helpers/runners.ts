// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { type ProposeOptions, proposeAndAccept } from "./proposals.js";
import { eventually } from "./server.js";

/** Waits until the producer's stdout channel has stopped streaming (its last entry leaves ENTRY.streaming). */
export async function untilFinished(client: SpoolClient, run: string, path: string, stdout: string, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => (await client.call("entry/get", { run, path: stdout, tail: 1 })).status !== ENTRY.streaming, timeoutMs, `${path} to finish`);
}

/** Waits until the producer has finished; returns each channel's entry (body as base64) and the log. */
export async function finished(client: SpoolClient, run: string, paths: { path: string; stdout: string; stderr: string }, timeoutMs = 30_000) {
  await untilFinished(client, run, paths.path, paths.stdout, timeoutMs);
  const get = (path: string) => client.call("entry/get", { run, path, encoding: "base64" });
  const [log, stdout, stderr] = await Promise.all([client.call("entry/get", { run, path: paths.path }), get(paths.stdout), get(paths.stderr)]);
  return { log, stdout, stderr, out: Buffer.from(stdout.body, "base64"), err: Buffer.from(stderr.body, "base64") };
}

/** Proposes `command` with `tool`, accepts it (on `options.runner`, else the default runner) and waits for it to finish. */
export async function runTool(client: SpoolClient, run: string, tool: "sh" | "env", command: string, options: Omit<ProposeOptions, "tool"> = {}) {
  const paths = await proposeAndAccept(client, client, run, command, { ...options, tool });
  const done = await finished(client, run, paths);
  return { ...done, path: paths.path, resolved: paths.resolved, out: done.out.toString(), err: done.err.toString() };
}

/** Waits until the runner has reported where the process runs (log attribute `process`). */
export async function processOf(client: SpoolClient, run: string, path: string): Promise<{ backend: string; pid?: number; container?: string }> {
  let target: any;
  await eventually(
    async () => {
      target = (await client.call("entry/get", { run, path })).attributes.process;
      return Boolean(target && (target.pid || target.container));
    },
    // A wait for an event, not a bound: beside two other CI runs a runner process took past 15 s to start a command (ciD).
    60_000,
    "the runner to report its process",
  );
  return target;
}
