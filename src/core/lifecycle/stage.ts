import type { ProjectRef } from "../../rpc/connection-context.js";
import { type ErrorName, notFound } from "../../rpc/errors.js";
import type { Repositories } from "../../store/repositories.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { CoreDeps } from "../deps.js";
import type { Effects } from "../effects.js";
import type { Owners } from "../producers/owners.js";
import type { ProducerRegistry } from "../producers/registry.js";
import type { RecentRevocations } from "../revocations.js";
import type { OtherServers } from "../runners/dispatch.js";
import type { AttachedRunner, RunnerRegistry } from "../runners/registry.js";
import type { FairShares } from "../shares.js";
import { ENTRY } from "../status.js";
import { type Caller, type Cell, type Operation, refusal, stateOf, type TransitionState, transition } from "./transitions.js";

/*
 * What every stage of the lifecycle starts from: the producer's state read from the store, and the table's
 * answer for it (transitions.ts). Each operation is a file of stages beside this one: propose.ts, decide.ts
 * (accept, reject, start), append.ts, finish.ts (complete, abort, cancel, lose), ownership.ts (own, claim) and
 * grace.ts (owners that leave, orphans after a restart); index.ts puts them together.
 */

/** When runners take queued commands, as the stages use it (claims.ts holds the rest). */
export interface RunnerClaims {
  /** Commands the runner may take now (0 while it drains or is gone; Infinity without a limit). */
  room(runner: AttachedRunner): number;
  /** What it runs, and what is on its way to it. */
  load(runner: AttachedRunner): number;
  /** The runner looks at the queues it serves. */
  wake(runner: AttachedRunner): void;
  /** The project's runners here that serve `pool` (null: any queue) look. */
  wakeProject(projectId: number, pool: string | null): void;
  /** Whether the runner rests after failed starts: it takes no queued command, and no pool chooses it. */
  resting(runner: AttachedRunner): boolean;
  /** A command the runner was sent did not start: it rests (the milliseconds returned), longer each time in a row. */
  failedStart(runner: AttachedRunner): number;
  /** A command the runner was sent started: its failed starts are forgotten. */
  started(runner: AttachedRunner): void;
}

/** What the stages work with, made once by the Lifecycle. */
export interface Stage {
  readonly deps: CoreDeps;
  readonly producers: ProducerRegistry;
  readonly owners: Owners;
  readonly runners: RunnerRegistry;
  readonly effects: Effects;
  /** The per-principal bounds a proposal is admitted by (shares.ts). */
  readonly shares: FairShares;
  /** The principals revoked lately, whose proposals stored late withdraw themselves (revocations.ts). */
  readonly revocations: RecentRevocations;
  /** The other servers sharing the database (null until the cluster link exists). */
  others: OtherServers | null;
  /** When runners take queued commands (claims.ts). */
  claims: RunnerClaims;
  /** Drops the channel lookups of a producer's appends (append.ts), once it finished or is owned elsewhere. */
  forgetTargets(producerId: number): void;
}

/** The method each operation is called through, as refusals name it. */
export const METHOD: Partial<Record<Operation, string>> = { append: "stream", complete: "stream/completed", abort: "stream/aborted", claim: "stream/claim" };

/** The run of the caller's project with this alias; another project's run is simply not found. */
export async function requireRun(repos: Repositories, project: ProjectRef, alias: string): Promise<RunRow> {
  const run = await repos.runs.findRun(project.id, alias);
  if (!run) throw notFound(`Run "${alias}"`, { run: alias });
  return run;
}

/** The run and a producer's log entry named by `{run, path}` in the caller's project. */
export async function requireLog(repos: Repositories, project: ProjectRef, alias: string, path: string): Promise<{ run: RunRow; log: EntryRow }> {
  const run = await requireRun(repos, project, alias);
  const log = await repos.entries.findEntry(run.id, path);
  if (log?.scheme !== "log") throw notFound(`Producer "${path}"`, { run: alias, path });
  return { run, log };
}

/** The producer's state and its channels (none are read before it is accepted). */
export async function producerState(repos: Repositories, log: EntryRow): Promise<{ state: TransitionState; channels: EntryRow[] }> {
  const channels = log.status === ENTRY.done ? await repos.entries.listChannels(log.id) : [];
  return {
    state: stateOf(
      log.status,
      channels.map((c) => c.status),
    ),
    channels,
  };
}

/** What the table says `operation` by `caller` does from `state`; a refusal is thrown as `refused` words it. */
export function follow(state: TransitionState, operation: Operation, caller: Caller, refused: (error: ErrorName) => Error): Extract<Cell, { to: unknown }> {
  const cell = transition(state, operation, caller);
  const error = refusal(cell);
  if (error) throw refused(error);
  return cell as Extract<Cell, { to: unknown }>;
}
