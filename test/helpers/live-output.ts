// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import type { SpoolClient } from "../../src/client/spool-client.js";
import { proposeAndAccept } from "./proposals.js";
import { untilFinished } from "./runners.js";

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

/** Proposes and accepts `command` (with `tty` when given, for `runner`) and watches its output; returns the log path and channels. */
export async function startProducer(
  client: SpoolClient,
  run: string,
  command: string,
  options: { runner?: string; tty?: { cols: number; rows: number } } = {},
) {
  const { path, resolved, stdout, stderr } = await proposeAndAccept(client, client, run, command, options);
  const output = await LiveOutput.watch(client, run, path);
  return { path, resolved, output, stdout, stderr };
}

/** Waits for the producer to finish; returns its stdout channel entry and the log. */
export async function ended(client: SpoolClient, run: string, path: string, stdout: string, timeoutMs = 30_000) {
  await untilFinished(client, run, path, stdout, timeoutMs);
  const [log, out] = await Promise.all([client.call("entry/get", { run, path }), client.call("entry/get", { run, path: stdout })]);
  return { log, out } as { log: any; out: any };
}
