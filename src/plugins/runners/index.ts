import { resolve } from "node:path";
import { z } from "zod";
import { SpoolClient } from "../../client/spool-client.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import { conflict, SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../../rpc/method.js";
import { RunnerClient } from "../../runners/runner-client.js";
import { LocalBackend } from "../../runners/local.js";
import {
  RunnerAttachParams,
  RunnerAttachResult,
  RunnerExecParams,
  RunnerExecResult,
  RunnerInfo,
  type RunnerExecParams as ExecParams,
} from "../../runners/protocol.js";
import { findEntry, listChannels } from "../../store/entries.js";
import { listRunnerProducers, setAttribute } from "../../store/producers.js";
import { findRun } from "../../store/runs.js";
import type { App } from "../plugin.js";
import { definePlugin } from "../plugin.js";
import { RUNNER_SELECTOR_SERVICE, type RunnerSelectorSlot } from "../proposals/index.js";
import type { AcceptedWork } from "../proposals/run-resolve.js";
import { STREAMS_SERVICE, type StreamsService } from "../stream/index.js";

export const EMBEDDED_RUNNER = "local";
const RUNNER_STATE = Symbol("runner");

interface Attached {
  name: string;
  backend: "local" | "docker" | "ssh";
  description: string | null;
  labels: Record<string, string>;
  default: boolean;
  embedded: boolean;
  attachedAt: number;
  connection: ConnectionHandle;
  projectId: number;
}

/**
 * Runners: `runner/attach`, `runner/list`, dispatch of accepted proposals
 * through `runner/exec`, the embedded local runner, and "runner lost" when a
 * runner's connection drops and it does not come back within the grace.
 */
export const runnersPlugin = definePlugin({
  name: "runners",
  dependencies: ["proposals", "stream"],
  setup(app) {
    const streams = app.use<StreamsService>(STREAMS_SERVICE);
    const slot = app.use<RunnerSelectorSlot>(RUNNER_SELECTOR_SERVICE);
    /** projectId → name → attached runner. */
    const attached = new Map<number, Map<string, Attached>>();
    /** Producers (log entry id) whose runner disconnected, waiting for it to come back. */
    const lostTimers = new Map<number, NodeJS.Timeout>();
    /** When (in attach order) a re-attached runner last claimed each producer: a claim after the drop cancels "runner lost". */
    const claims = new Map<number, number>();
    let attachCounter = 0;
    let stopping = false;
    const embedded = new EmbeddedRunners(app);

    const runnersOf = (projectId: number) => {
      let map = attached.get(projectId);
      if (!map) attached.set(projectId, (map = new Map()));
      return map;
    };

    app.notification({
      name: "runner/exec",
      description:
        "Asks the runner to execute an accepted proposal: stream stdout and stderr into `channels` with seq, then stream/completed or stream/aborted. The reply comes once the process has started (or failed to).",
      direction: "server",
      params: RunnerExecParams,
      reply: RunnerExecResult,
    });

    app.method(
      defineMethod({
        name: "runner/attach",
        description:
          "Turns this connection into a runner of the project. After a reconnect, `resume` names the producers it is still executing; the reply says which are still open (and their last stored seq per channel) and which were finished meanwhile.",
        params: RunnerAttachParams,
        result: RunnerAttachResult,
        handler: async (params, ctx) => {
          const runners = runnersOf(ctx.project.id);
          if (ctx.connection.state.has(RUNNER_STATE)) throw conflict("This connection is already attached as a runner");
          const isEmbedded = embedded.owns(ctx.connection);
          if (params.name === EMBEDDED_RUNNER && app.config.localRunner && !isEmbedded) {
            throw conflict(`"${EMBEDDED_RUNNER}" is the embedded runner's name; pick another`, { name: params.name });
          }
          const holder = runners.get(params.name);
          if (holder) throw conflict(`Runner "${params.name}" is already attached to project "${ctx.project.name}"`, { name: params.name });
          const runner: Attached = {
            name: params.name,
            backend: params.backend,
            description: params.description ?? null,
            labels: params.labels ?? {},
            default: params.default ?? false,
            embedded: isEmbedded,
            attachedAt: Date.now(),
            connection: ctx.connection,
            projectId: ctx.project.id,
          };
          runners.set(params.name, runner);
          ctx.connection.state.set(RUNNER_STATE, runner);
          const resumed: z.input<typeof RunnerAttachResult>["resumed"] = [];
          const finished: z.input<typeof RunnerAttachResult>["finished"] = [];
          for (const ref of params.resume ?? []) {
            const claim = await claimProducer(app, ctx.project, params.name, ref);
            if (!claim) {
              finished.push({ ...ref, status: 404 });
            } else if (claim.open) {
              clearTimeout(lostTimers.get(claim.logId));
              lostTimers.delete(claim.logId);
              claims.set(claim.logId, ++attachCounter);
              streams.touched(claim.logId);
              resumed.push({ ...ref, lastSeq: claim.lastSeq });
            } else {
              finished.push({ ...ref, status: claim.status });
            }
          }
          app.log.info(`runner ${params.name} (${params.backend}) attached to project ${ctx.project.name}; resumed ${resumed.length}`);
          return { name: params.name, project: ctx.project.name, resumed, finished, maxUnackedChunks: app.config.limits.maxUnackedChunks };
        },
      }),
    );

    app.method(
      defineMethod({
        name: "runner/list",
        description: "The project's runners: attached ones, and the embedded local runner when the server runs one.",
        params: z.strictObject({}),
        result: z.object({ runners: z.array(RunnerInfo) }),
        handler: async (_params, ctx) => {
          const list = [...runnersOf(ctx.project.id).values()].map((r) => ({
            name: r.name,
            backend: r.backend,
            description: r.description,
            labels: r.labels,
            default: r.default,
            embedded: r.embedded,
            attachedAt: r.attachedAt,
            running: 0,
          }));
          if (app.config.localRunner && !list.some((r) => r.name === EMBEDDED_RUNNER)) {
            list.push({
              name: EMBEDDED_RUNNER,
              backend: "local",
              description: "embedded in the server; starts when first used",
              labels: {},
              default: false,
              embedded: true,
              attachedAt: 0,
              running: 0,
            });
          }
          for (const r of list) r.running = (await listRunnerProducers(app.store.db, ctx.project.id, r.name)).length;
          return { runners: list.sort((a, b) => a.name.localeCompare(b.name)) };
        },
      }),
    );

    slot.current = {
      select(project, requested) {
        if (requested === "self") return "self";
        const runners = runnersOf(project.id);
        if (requested !== undefined) {
          if (runners.has(requested) || (requested === EMBEDDED_RUNNER && app.config.localRunner)) return requested;
          throw new SpoolError("NO_RUNNER", `No runner named "${requested}" is attached to project "${project.name}"`, { runner: requested });
        }
        const fallback = [...runners.values()].filter((r) => r.default && !r.embedded).sort((a, b) => b.attachedAt - a.attachedAt)[0];
        if (fallback) return fallback.name;
        if (app.config.localRunner) return EMBEDDED_RUNNER;
        throw new SpoolError("NO_RUNNER", 'No runner can execute this proposal: attach one, or accept with runner "self" to stream the output yourself');
      },
      dispatch(work) {
        void dispatch(work);
      },
    };

    /** Sends `runner/exec` to the selected runner; a runner that cannot take it ends the producer as 499. */
    async function dispatch(work: AcceptedWork): Promise<void> {
      const abort = (reason: string) =>
        streams.finish(app, streams.hub, work.project, work.run, work.log, { kind: "aborted", reason }).catch((error) => {
          app.log.error(`could not abort ${work.log.path}`, error);
        });
      try {
        let runner = runnersOf(work.project.id).get(work.runner);
        if (!runner && work.runner === EMBEDDED_RUNNER && app.config.localRunner) {
          await embedded.ensure(work.project);
          runner = runnersOf(work.project.id).get(work.runner);
        }
        if (!runner) return void (await abort(`runner "${work.runner}" is not attached`));
        const params: ExecParams = {
          run: work.run.alias,
          path: work.log.path,
          command: String(work.attributes.command),
          cwd: resolve(work.project.root, String(work.attributes.cwd ?? "")),
          cwdRelative: String(work.attributes.cwd ?? ""),
          env: (work.attributes.env as Record<string, string> | undefined) ?? {},
          channels: work.channels.map(({ channel, name, path }) => ({ channel, name, path })),
          timeoutMs: typeof work.attributes.timeoutMs === "number" ? work.attributes.timeoutMs : app.config.commandTimeoutMs,
        };
        const reply = RunnerExecResult.parse(await runner.connection.request("runner/exec", params, 30_000));
        if (reply.target) await setAttribute(app.store.db, work.log.id, "process", reply.target);
        // A runner that could not start the command has already sent stream/aborted; this covers one that did not.
        if (!reply.started) await abort(`failed to start: ${reply.error ?? "unknown error"}`);
      } catch (error) {
        await abort(`runner "${work.runner}" did not take the command: ${error instanceof Error ? error.message : String(error)}`);
      }
    }

    app.on("connection:closed", async ({ connection }) => {
      embedded.forget(connection);
      const runner = connection.state.get(RUNNER_STATE) as Attached | undefined;
      if (!runner || stopping) return;
      const runners = runnersOf(runner.projectId);
      if (runners.get(runner.name) === runner) runners.delete(runner.name);
      const droppedAt = ++attachCounter;
      const open = await listRunnerProducers(app.store.db, runner.projectId, runner.name);
      if (open.length === 0) return;
      const grace = app.config.runnerGraceMs;
      app.log.warn(`runner ${runner.name} disconnected with ${open.length} producer(s) running; they have ${grace} ms for it to come back`);
      for (const producer of open) {
        clearTimeout(lostTimers.get(producer.id));
        // The runner may already be back (its re-attach can overtake this handler): then it has claimed the producer.
        if ((claims.get(producer.id) ?? 0) > droppedAt) continue;
        const timer = setTimeout(() => {
          lostTimers.delete(producer.id);
          if ((claims.get(producer.id) ?? 0) > droppedAt) return;
          streams.finishById(app, streams.hub, producer.id, { kind: "aborted", reason: "runner lost" }).catch((error: unknown) => {
            app.log.error(`could not finish ${producer.path} after its runner was lost`, error);
          });
        }, grace);
        timer.unref();
        lostTimers.set(producer.id, timer);
      }
    });

    app.on("server:stopping", async () => {
      stopping = true;
      for (const timer of lostTimers.values()) clearTimeout(timer);
      lostTimers.clear();
      await embedded.stopAll();
    });
  },
});

/** Checks that a producer a re-attaching runner names is its own; reports whether it is still open. */
async function claimProducer(app: App, project: ProjectRef, runner: string, ref: { run: string; path: string }) {
  const run = await findRun(app.store.db, project.id, ref.run);
  const log = run && (await findEntry(app.store.db, run.id, ref.path));
  if (!log || log.scheme !== "log") return null;
  const attributes = JSON.parse(log.attributes) as { runner?: string };
  if (attributes.runner !== runner) return null;
  const channels = await listChannels(app.store.db, log.id);
  const open = channels.some((c) => c.status === 102);
  const lastSeq = Object.fromEntries(channels.map((c) => [String(c.channel), c.last_seq]));
  return { logId: log.id, open, status: channels[0]?.status ?? log.status, lastSeq };
}

/** The embedded local runner: one in-process runner connection per project, opened when first needed. */
class EmbeddedRunners {
  readonly #agents = new Map<number, Promise<RunnerClient>>();
  readonly #connectionIds = new Set<string>();

  constructor(private readonly app: App) {}

  owns(connection: ConnectionHandle): boolean {
    return this.#connectionIds.has(connection.id);
  }

  forget(connection: ConnectionHandle): void {
    this.#connectionIds.delete(connection.id);
  }

  ensure(project: ProjectRef): Promise<RunnerClient> {
    let agent = this.#agents.get(project.id);
    if (!agent) {
      agent = this.#start(project);
      this.#agents.set(project.id, agent);
      agent.catch(() => this.#agents.delete(project.id));
    }
    return agent;
  }

  async #start(project: ProjectRef): Promise<RunnerClient> {
    const agent = new RunnerClient({
      connect: async () => {
        const { transport, connectionId } = this.app.connectInProcess();
        this.#connectionIds.add(connectionId);
        return new SpoolClient(transport);
      },
      project: project.name,
      name: EMBEDDED_RUNNER,
      backend: new LocalBackend({ defaultCwd: project.root }),
      log: this.app.log,
    });
    await agent.start();
    return agent;
  }

  async stopAll(): Promise<void> {
    const agents = await Promise.allSettled(this.#agents.values());
    this.#agents.clear();
    await Promise.all(agents.map((a) => (a.status === "fulfilled" ? a.value.stop("server shutting down") : undefined)));
  }
}
