import { type SpoolClient, SpoolRpcError } from "../../src/client/spool-client.js";
import type { ParamsOf } from "../../src/protocol/methods/index.js";

/** Creates run `alias` unless the project already has it (a CONFLICT); any other error fails the test. */
export async function ensureRun(client: SpoolClient, alias: string): Promise<void> {
  await client.call("run/create", { alias }).catch((error: unknown) => {
    if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) throw error;
  });
}

/** What a proposal may carry besides its command, and the runner to accept it for (default: the server's default one). */
export type ProposeOptions = Omit<ParamsOf<"proposal/create">, "run" | "command" | "tool"> & { tool?: ParamsOf<"proposal/create">["tool"]; runner?: string };

/**
 * Proposes `command` in `run` (created when missing) from `proposer` and accepts it from `acceptor`, as a
 * person would (for runner "self", proposed with sandbox "full" unless the options say otherwise); returns the log path, its stdout and stderr channels and the whole run/resolve reply.
 */
export async function proposeAndAccept(proposer: SpoolClient, acceptor: SpoolClient, run: string, command: string, options: ProposeOptions = {}) {
  const { runner, tool = "sh", ...rest } = options;
  await ensureRun(proposer, run);
  // "self" streams it from the accepting client with no sandbox: it takes only what was proposed in mode full.
  const sandbox = runner === "self" && rest.sandbox === undefined ? { sandbox: "full" as const } : {};
  const { path } = await proposer.call("proposal/create", { run, tool, command, ...rest, ...sandbox });
  const resolved = await acceptor.call("run/resolve", { run, path, decision: "accept", ...(runner ? { runner } : {}) });
  const [stdout, stderr] = resolved.channels.map((c) => c.path) as [string, string];
  return { path, stdout, stderr, resolved };
}
