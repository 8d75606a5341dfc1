// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import type { SpoolClient } from "../../src/client/spool-client.js";
import { eventually } from "../helpers/server.js";

/** A producer's output as it arrives (channels 1 and 2 apart), with a way to wait for what a step should print. */
export class LiveOutput {
  readonly text = new Map<number, string>();
  #waiters: (() => void)[] = [];

  static async watch(client: SpoolClient, run: string, path: string): Promise<LiveOutput> {
    const output = new LiveOutput();
    await client.watch({ run, path }, (chunk) => {
      output.text.set(chunk.channel, (output.text.get(chunk.channel) ?? "") + chunk.data.toString("utf8"));
      for (const wake of output.#waiters.splice(0)) wake();
    });
    return output;
  }

  get stdout(): string {
    return this.text.get(1) ?? "";
  }

  /** Resolves once stdout matches; fails after `timeoutMs` showing what came. */
  until(pattern: RegExp | string, timeoutMs = 15_000): Promise<string> {
    const matches = () => (typeof pattern === "string" ? this.stdout.includes(pattern) : pattern.test(this.stdout));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${String(pattern)} in stdout; it holds ${JSON.stringify(this.stdout)}`)),
        timeoutMs,
      );
      const check = () => {
        if (matches()) {
          clearTimeout(timer);
          resolve(this.stdout);
        } else this.#waiters.push(check);
      };
      check();
    });
  }
}

/** Proposes `command` (with `tty` when given) in `run` and accepts it for `runner`; returns the log path and channels. */
export async function startProducer(
  client: SpoolClient,
  run: string,
  command: string,
  options: { runner?: string; tty?: { cols: number; rows: number } } = {},
) {
  await client.request("run/create", { alias: run }).catch(() => undefined);
  const { path } = await client.request("proposal/create", { run, tool: "sh", command, ...(options.tty ? { tty: options.tty } : {}) });
  const resolved = await client.request("run/resolve", { run, path, decision: "accept", ...(options.runner ? { runner: options.runner } : {}) });
  const output = await LiveOutput.watch(client, run, path);
  return { path, resolved, output, stdout: resolved.channels[0].path as string };
}

/** Waits for the producer to finish; returns its stdout channel entry and the log. */
export async function ended(client: SpoolClient, run: string, path: string, stdout: string, timeoutMs = 30_000) {
  await eventually(async () => (await client.request("entry/get", { run, path: stdout, tail: 1 })).status !== 102, timeoutMs, `${path} to finish`);
  const [log, out] = await Promise.all([client.request("entry/get", { run, path }), client.request("entry/get", { run, path: stdout })]);
  return { log, out } as { log: any; out: any };
}
