import type { z } from "zod";
import type { PrincipalRef, TransportKind } from "../../protocol/roles.js";
import type { RunnerAttachParams, RunnerAttachResult } from "../../protocol/runner.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { AcceptResult, ClaimResult, CoreDeps, FinishResult, ForwardedAccept, ProducerTarget, ProposalInput, ResolverOut } from "../deps.js";
import { Effects, type ProducerActivity } from "../effects.js";
import type { Outcome } from "../producers/outcome.js";
import type { Owners } from "../producers/owners.js";
import type { ProducerRegistry } from "../producers/registry.js";
import { RecentRevocations } from "../revocations.js";
import { attachRunner } from "../runners/attach.js";
import type { OtherServers } from "../runners/dispatch.js";
import type { AttachedRunner, RunnerRegistry } from "../runners/registry.js";
import { FairShares } from "../shares.js";
import { ENTRY } from "../status.js";
import type { WatcherHub } from "../streams/watchers.js";
import { ChannelAppends } from "./append.js";
import { Claims } from "./claims.js";
import * as decide from "./decide.js";
import { drain, drainedElsewhere } from "./drain.js";
import * as finish from "./finish.js";
import * as grace from "./grace.js";
import * as ownership from "./ownership.js";
import { propose } from "./propose.js";
import { moveProposals } from "./runner-moved.js";
import * as stages from "./stage.js";
import { take } from "./take.js";

// The handlers, plugins and the agent loop import these from here.
export type { AcceptResult, ClaimResult, CoreDeps, FinishResult, ForwardedAccept, ProducerTarget, ProposalInput } from "../deps.js";
export { proposalNotice } from "../effects.js";
export { ABORT_RESOLVER, connectionResolver, describeCaller } from "../resolvers.js";
export { INPUT_CHANNEL } from "./append.js";

/**
 * The one owner of the producer lifecycle. Every status change of a proposal or a data channel happens here,
 * each stored, announced and hooked exactly once. Which operation may happen from which state, for whom, and
 * what it leads to is the table in lifecycle/transitions.ts; each operation is a file of stages beside it that
 * reads the producer's state, asks the table, then acts (the store write, effects.ts, runners/dispatch.ts):
 * propose.ts; decide.ts (accept, reject, start); append.ts (append, and the input channel's opening: this class
 * holds them and offers `append` bound, so a chunk reaches it with no call in between); finish.ts (complete, abort, cancel,
 * lose); ownership.ts (own, claim); grace.ts (owners that leave, orphans after a restart).
 *
 * A producer has exactly one owner: the runner it was dispatched to, or the connection that accepted it with
 * runner "self". Ownership is durable as the owner's name and resume-token key in the log entry, and live as
 * one connection in `Owners`.
 */
export class Lifecycle {
  readonly #stage: stages.Stage;
  readonly #claims: Claims;
  /** The hot path's stage: channels' appends and their targets, and the input channel's opening. */
  readonly #appends: ChannelAppends;
  /**
   * append: one chunk to one channel, by the producer's owner only (lifecycle/append.ts). The appends' own method,
   * bound once: a call in between costs every chunk (bench/history/README.md "stream append"; test/core/append-guard.test.ts).
   */
  readonly append: ChannelAppends["append"];

  constructor(
    private readonly deps: CoreDeps,
    readonly producers: ProducerRegistry,
    private readonly owners: Owners,
    readonly runners: RunnerRegistry,
    readonly watchers: WatcherHub,
  ) {
    this.#appends = new ChannelAppends(deps, owners, watchers);
    this.append = this.#appends.append.bind(this.#appends);
    const shares = new FairShares(deps);
    this.#stage = {
      deps,
      producers,
      owners,
      runners,
      effects: new Effects(deps, watchers, shares),
      shares,
      revocations: new RecentRevocations(),
      others: null,
      claims: null as unknown as stages.RunnerClaims,
      forgetTargets: (producerId) => this.#appends.forgetTargets(producerId),
    };
    this.#claims = new Claims(this.#stage);
    this.#stage.claims = this.#claims;
  }

  /** The audit trail, notifications and deadlines, once the core has them. */
  useActivity(activity: ProducerActivity): void {
    this.#stage.effects.activity = activity;
  }

  /** The other servers sharing the database, once the cluster link exists. */
  useCluster(link: OtherServers): void {
    this.#stage.others = link;
  }

  /** Opens a producer's input channel (channel 0) with the first input a client sends (lifecycle/append.ts). */
  openInput(log: EntryRow): Promise<EntryRow | null> {
    return this.#appends.openInput(log);
  }

  /** The run of the caller's project with this alias; another project's run is simply not found. */
  requireRun(project: ProjectRef, alias: string): Promise<RunRow> {
    return stages.requireRun(this.deps.repos, project, alias);
  }

  /** The run and a producer's log entry named by `{run, path}` in the caller's project. */
  requireLog(project: ProjectRef, alias: string, path: string): Promise<{ run: RunRow; log: EntryRow }> {
    return stages.requireLog(this.deps.repos, project, alias, path);
  }

  /** propose: the log entry at 202, `run/proposal` to every connection of the project (or accepted at once by a rule). */
  propose(project: ProjectRef, run: RunRow, input: ProposalInput): Promise<EntryRow> {
    return propose(this.#stage, project, run, input);
  }

  /** accept: the log entry 202 → 200 and its data channels at 102, owned by the chosen runner or, for "self", by `caller`. */
  accept(caller: ConnectionHandle, project: ProjectRef, target: ProducerTarget, options: decide.AcceptRequest): Promise<AcceptResult> {
    return decide.accept(this.#stage, caller, project, target, options);
  }

  /** accept, passed on by another server because the runner it names (or the project's default) is attached here. */
  acceptForwarded(project: ProjectRef, target: ProducerTarget, options: ForwardedAccept): Promise<AcceptResult> {
    return decide.acceptAs(this.#stage, project, target, { ...options, self: null, forwarded: true });
  }

  /** reject: the log entry 202 → 403. `by` names who decided (a client, or run/abort). */
  reject(project: ProjectRef, target: ProducerTarget, options: { by: string; resolver?: ResolverOut; reason?: string | undefined }): Promise<EntryRow> {
    return decide.reject(this.#stage, project, target, options);
  }

  /** A principal revoked on another server: a proposal of it this server stores from now on withdraws itself (propose.ts). */
  noteRevoked(principal: string): void {
    this.#stage.revocations.add(principal);
  }

  /** A revoked principal's proposals that wait for a decision, in every project, rejected (withdrawn) as `options` says. */
  withdrawProposalsOf(principal: string, options: { by: string; resolver: ResolverOut; reason: string }): Promise<decide.Withdrawn[]> {
    return decide.withdrawProposalsOf(this.#stage, principal, options);
  }

  /** start: the owner runs the producer; where (pid, container, host) is recorded on the log entry. */
  start(project: ProjectRef, run: RunRow, log: EntryRow, runner: string, process: Record<string, unknown>): Promise<boolean> {
    return decide.start(this.#stage, project, run, log, runner, process);
  }

  /** When runners take queued commands: a runner's room and load, wake-ups (claims.ts). */
  get claims(): Claims {
    return this.#claims;
  }

  /** take: the runner takes the queued command `log` (the table decides from its state), and it is dispatched to it. */
  take(runner: AttachedRunner, log: EntryRow): Promise<boolean> {
    return take(this.#stage, runner, log);
  }

  /** A command was queued on another server in the project's queue `pool`: this server's free runners of it look. */
  queuedElsewhere(projectId: number, pool: string): void {
    this.#stage.claims.wakeProject(projectId, pool);
  }

  /** spool runners drain NAME (or its undoing): the runner takes nothing new; what it runs and its state now. */
  drain(project: ProjectRef, name: string, draining: boolean, caller: PrincipalRef): ReturnType<typeof drain> {
    return drain(this.#stage, project, name, draining, caller);
  }

  /** Another server drained a runner attached here. */
  drainedElsewhere(projectId: number, name: string, draining: boolean): void {
    drainedElsewhere(this.#stage, projectId, name, draining);
  }

  /** The producer's live owner, to relay input, signals and resizes to; undefined while it has none. */
  ownerOf(producerId: number): { connection: ConnectionHandle; kind: "runner" | "self" } | undefined {
    return this.owners.ownerOf(producerId);
  }

  /** complete or abort, by the owner. A producer that has already finished reports its status and changes nothing. */
  finishByOwner(
    caller: ConnectionHandle,
    project: ProjectRef,
    target: ProducerTarget,
    outcome: Outcome & { kind: "completed" | "aborted" },
  ): Promise<FinishResult> {
    return finish.finishByOwner(this.#stage, caller, project, target, outcome);
  }

  /** cancel, by anyone in the project (`by`: who, when known): channels 499 and `stream/cancelled`, so the owner kills the work. */
  cancel(project: ProjectRef, target: ProducerTarget, reason: string | undefined, by?: string, via?: TransportKind): Promise<FinishResult> {
    return finish.cancel(this.#stage, project, target, reason, by, via);
  }

  /** lose: the server ends a producer whose owner is gone (runner lost, owner lost, interrupted by a restart, failed dispatch). */
  lose(producerId: number, reason: string): Promise<FinishResult | null> {
    return finish.lose(this.#stage, producerId, reason);
  }

  /** A connection shows a producer's resume token and becomes its owner (after a reconnect or a restart). */
  claim(caller: ConnectionHandle, project: ProjectRef, target: ProducerTarget, token: string): Promise<ClaimResult> {
    return ownership.claim(this.#stage, caller, project, target, token);
  }

  /** Another server's connection owns the producer now: this server's owner (or grace) lets go of it. */
  ownedElsewhere(producerId: number): void {
    ownership.forget(this.#stage, producerId);
  }

  /** Another server finished the producer: nobody here owns it any more. */
  finishedElsewhere(producerId: number): void {
    ownership.forget(this.#stage, producerId);
  }

  /** `runner/attach` (runners/attach.ts): the runner is attached and takes back the producers it resumes. */
  attachRunner(connection: ConnectionHandle, project: ProjectRef, params: z.output<typeof RunnerAttachParams>): Promise<z.input<typeof RunnerAttachResult>> {
    const stage = this.#stage;
    const ownAs = (id: number, owner: ConnectionHandle, kind: "runner") => ownership.own(stage, id, owner, kind);
    const attached = (runner: AttachedRunner) => stage.claims.wake(runner);
    return attachRunner(
      { deps: this.deps, runners: this.runners, owners: this.owners, others: stage.others, own: ownAs, attached },
      connection,
      project,
      params,
    );
  }

  /** The producers a runner is executing (open channels), for runner/list. */
  async runningOn(project: ProjectRef, runner: string): Promise<number> {
    return (await this.deps.repos.producers.listRunnerProducers(project.id, runner, ENTRY.streaming)).length;
  }

  /** A connection went away: the producers it owned wait the grace period for their owner, then end 499. */
  connectionClosed(connection: ConnectionHandle): void {
    grace.connectionClosed(this.#stage, connection);
  }

  /** Producers left streaming by a server that stopped are adopted here, wait the grace for their owner, then end 499 with `reason`. */
  /** Pending proposals shown with a stopped server's runner: this server's runner in its place, announced again. */
  moveProposals(): Promise<number> {
    return moveProposals(this.#stage);
  }

  adoptOrphans(reason = "interrupted"): Promise<void> {
    return grace.adoptOrphans(this.#stage, reason);
  }

  async stop(): Promise<void> {
    this.#claims.stop();
    this.owners.stop();
    await this.runners.stop();
  }
}
