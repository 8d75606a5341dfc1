import { SpoolClient } from "../../client/spool-client.js";
import type { Logger } from "../../logger.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import type { Transport } from "../../rpc/transport.js";
import { RunnerClient } from "../client/runner-client.js";
import { once, probeBwrap, type SandboxInfo } from "../sandbox/sandbox.js";
import type { EmbeddedRunnerHost } from "./embedded-host.js";
import { LocalBackend } from "./local.js";
import type { ProcessRecorder } from "./orphans.js";

export const EMBEDDED_RUNNER = "local";

/**
 * The embedded runner's largest chunk: one read of a local process's pipe, under the server's
 * `limits.maxChunkBytes` when that is lower. Larger chunks were tried (two in flight per channel, what gathered
 * meanwhile sent as one chunk of up to 1 MiB): fewer rows and calls on the main thread, but every byte copied
 * once more to join the reads, and the server's CPU per GB over all its threads (GC included) came out higher,
 * not lower (bench/history/README.md, issue 24 session 3).
 */
export const EMBEDDED_MAX_CHUNK_BYTES = 64 * 1024;

export interface EmbeddedRunnerOptions {
  /** Names the egress proxy of an `allowlist` command resolves to these addresses before DNS (config.json `egress.hosts`). */
  egressHosts?: Readonly<Record<string, string>>;
  /** The server's `limits.maxChunkBytes`: a larger chunk would be refused. */
  maxChunkBytes?: number;
}

/**
 * The embedded local runner of `spool serve`: one in-process runner
 * connection per project, opened when a proposal is first dispatched to it.
 * It attaches and streams like any other runner. With `processes` (the
 * server passes a registry under $SPOOL_HOME/processes, whose leftovers it
 * killed at start-up), every command it starts is recorded, so a server
 * killed without a chance to stop them does not leave them running forever.
 */
export class EmbeddedRunners implements EmbeddedRunnerHost {
  readonly name = EMBEDDED_RUNNER;
  readonly #runners = new Map<number, Promise<RunnerClient>>();
  readonly #connectionIds = new Set<string>();

  constructor(
    private readonly connectInProcess: () => { transport: Transport; connectionId: string },
    private readonly log: Logger,
    private readonly processes?: ProcessRecorder,
    private readonly options: EmbeddedRunnerOptions = {},
  ) {}

  /** The sandbox probe every embedded runner's backend and the facts shown of them share (run once, at first use). */
  readonly #probe = once(() => probeBwrap("bwrap", process.env));

  /** What the embedded runners' local backend offers (bubblewrap on the server's machine, or none): the probe their commands run with. */
  async sandbox(): Promise<SandboxInfo> {
    return (await this.#probe()).info;
  }

  owns(connection: ConnectionHandle): boolean {
    return this.#connectionIds.has(connection.id);
  }

  async ensure(project: ProjectRef): Promise<void> {
    let runner = this.#runners.get(project.id);
    if (!runner) {
      runner = this.#start(project);
      this.#runners.set(project.id, runner);
      runner.catch(() => this.#runners.delete(project.id));
    }
    await runner;
  }

  async #start(project: ProjectRef): Promise<RunnerClient> {
    const runner = new RunnerClient({
      connect: async () => {
        const { transport, connectionId } = this.connectInProcess();
        this.#connectionIds.add(connectionId);
        return new SpoolClient(transport);
      },
      project: project.name,
      name: EMBEDDED_RUNNER,
      backend: new LocalBackend({
        defaultCwd: project.root,
        processes: this.processes,
        probe: this.#probe,
        ...(this.options.egressHosts ? { egressHosts: this.options.egressHosts } : {}),
      }),
      log: this.log,
      maxChunkBytes: Math.min(EMBEDDED_MAX_CHUNK_BYTES, this.options.maxChunkBytes ?? EMBEDDED_MAX_CHUNK_BYTES),
    });
    await runner.start();
    return runner;
  }

  async stopAll(): Promise<void> {
    const runners = await Promise.allSettled(this.#runners.values());
    this.#runners.clear();
    await Promise.all(runners.map((r) => (r.status === "fulfilled" ? r.value.stop("server shutting down") : undefined)));
  }
}
