import { resolve } from "node:path";
import type { SpoolConfig } from "../../config/config.js";
import { egressAllowed } from "../../protocol/egress.js";
import { type RunnerExecParams, RunnerExecResult } from "../../protocol/runner.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { producerFromRow } from "../../store/producer-row.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { AcceptResult, ForwardedAccept, ProducerTarget } from "../deps.js";
import { serverState } from "../sandbox/view.js";
import type { RunnerFacts } from "./pools.js";
import type { AttachedRunner, RunnerRegistry } from "./registry.js";

export { serverState };

/*
 * Where accepted work goes: to a runner attached to this server (runner/exec), or, when the runner is
 * attached to another server sharing the database, to that server, which accepts and dispatches it.
 */

/** The other servers sharing the database, as the lifecycle needs them (the cluster link provides it). */
export interface OtherServers {
  readonly shared: boolean;
  /** The other server the runner named (null: the project's default) is attached to; null when none. */
  runnerServer(projectId: number, name: string | null): Promise<number | null>;
  /** The name of the project's default runner when it is attached to another living server; null when not. */
  defaultRunnerName(projectId: number): Promise<string | null>;
  /** This server's id in the cluster tables. */
  readonly serverId: number;
  /** How facts and runner lists name a server sharing the database: `host:port` (its machine and the port it serves on). */
  serverLabel(server: number): Promise<string>;
  /** Whether that server is alive now. */
  alive(server: number): Promise<boolean>;
  /** Accept there, for the runner attached there. */
  acceptElsewhere(server: number, project: ProjectRef, target: ProducerTarget, options: ForwardedAccept): Promise<AcceptResult>;
  /** The runners of the project attached to the other living servers, as they said at attach (their rows). */
  runnersElsewhere(projectId: number): Promise<RunnerFacts[]>;
  /** Tells the other servers a command waits in a project's queue `pool`: their free runners of it look. */
  queued(projectId: number, pool: string): void;
  /** Tells the server a runner is attached to that it drains (or claims again). */
  drainElsewhere(projectId: number, name: string, draining: boolean): void;
}

/** Whether the runner named (undefined: the project's default) is attached to this server, or is its embedded one. */
function runnerHere(runners: RunnerRegistry, project: ProjectRef, name: string | undefined): boolean {
  if (name === undefined) return runners.list(project.id).some((r) => r.default);
  return runners.get(project.id, name) !== undefined || name === runners.embeddedName;
}

/**
 * The other server an accept naming `runner` must be passed on to; null: it is decided here. A server's embedded
 * runner is that server's (every server has one, under the same name): a proposal recorded for one (`recorded`, the
 * server shown with it before the decision) goes to that server from whichever server accepts it. When that
 * server has stopped, the accept never gets here: a living server's runner is recorded and shown in its place first,
 * and the person decides again (runner-moved.ts). An attached runner is found where it is attached now.
 */
export async function acceptingServer(
  others: OtherServers | null,
  runners: RunnerRegistry,
  project: ProjectRef,
  runner: string | undefined,
  recorded: { name: string | null; own: boolean; server: { id: number; label: string } | null } = { name: null, own: false, server: null },
): Promise<number | null> {
  if (!others?.shared || runner === "self") return null;
  const { server } = recorded;
  if (recorded.own && server && runner === recorded.name && server.id !== others.serverId && (await others.alive(server.id))) return server.id;
  if (runnerHere(runners, project, runner)) return null;
  return others.runnerServer(project.id, runner ?? null);
}

/** `runner/exec` for an accepted producer: what to run, where, for how long, in which sandbox. */
export function execParams(
  config: SpoolConfig,
  project: ProjectRef,
  run: RunRow,
  log: EntryRow,
  runner: AttachedRunner,
  channels: { channel: number; name: string; path: string }[],
  producerReadOnly: boolean,
): RunnerExecParams {
  const producer = producerFromRow(log);
  const defaultTimeout = producer.background ? config.backgroundTimeoutMs : config.commandTimeoutMs;
  const readOnly = producer.readOnly || producerReadOnly;
  const workspaceWrite = !readOnly && producer.sandbox === "workspace-write";
  return {
    run: run.alias,
    path: log.path,
    command: producer.command,
    cwd: resolve(project.root, producer.cwd),
    cwdRelative: producer.cwd,
    env: producer.env,
    channels: channels.map(({ channel, name, path }) => ({ channel, name, path })),
    timeoutMs: producer.timeoutMs ?? defaultTimeout,
    readOnly,
    // Runners from before sandbox modes refuse fields they do not know; they are never given workspace-write work.
    ...(workspaceWrite ? { sandbox: "workspace-write" as const, network: producer.sandboxNetwork !== false } : {}),
    // Network mode allowlist: what the person accepted, the project's hosts and the asked ones; nothing else.
    ...(workspaceWrite && producer.egress ? { egress: egressAllowed(producer.egress) } : {}),
    // What it sees as its facts showed it (runners that report a view; older ones get none), and the server's state,
    // which the runner refuses to put in any view (checked, never mounted over).
    ...((readOnly || workspaceWrite) && runner.sandbox.view && producer.sandboxView
      ? { view: { toolchains: producer.sandboxView.toolchains ?? [], read: producer.sandboxView.read, write: producer.sandboxView.write } }
      : {}),
    ...((readOnly || workspaceWrite) && runner.sandbox.view ? { secrets: serverState(config) } : {}),
    passEnv: config.commandEnv,
    ...(producer.tty ? { tty: producer.tty } : {}),
  };
}

/**
 * Sends `runner/exec` to the runner: `started` with where the work runs, or `lost` with why it is not
 * running (a runner that could not start it has already sent stream/aborted; this covers one that did not).
 */
export async function dispatch(
  runner: AttachedRunner,
  params: RunnerExecParams,
  then: { started(target: Record<string, unknown>): Promise<unknown>; lost(reason: string): Promise<unknown> },
): Promise<void> {
  try {
    const reply = RunnerExecResult.parse(await runner.connection.request("runner/exec", params, 30_000));
    if (!reply.started) return void (await then.lost(`failed to start: ${reply.error ?? "unknown error"}`));
    await then.started(reply.target ?? { backend: runner.backend });
  } catch (error) {
    await then.lost(`runner "${runner.name}" did not take the command: ${error instanceof Error ? error.message : String(error)}`);
  }
}
