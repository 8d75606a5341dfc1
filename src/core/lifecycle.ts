import type { z } from "zod";
import type { RunnerAttachParams, RunnerAttachResult } from "../protocol/runner.js";
import { loaderVariables, loaderVariablesMessage } from "../protocol/sandbox.js";
import type { ConnectionHandle, ProjectRef } from "../rpc/connection-context.js";
import { conflict, type ErrorName, notFound, SpoolError } from "../rpc/errors.js";
import type { SandboxInfo } from "../runners/sandbox.js";
import { producerFromRow } from "../store/producer-row.js";
import { lineCount, type Repositories } from "../store/repositories.js";
import type { EntryRow, RunRow } from "../store/schema.js";
import { describeRule, matchingRule, type RuleSubject, ruleResolver, storeRule } from "./allow-rules.js";
import { confineCwd } from "./cwd.js";
import type { AcceptResult, ClaimResult, CoreDeps, FinishResult, ForwardedAccept, ProducerTarget, ProposalInput, ResolverOut } from "./deps.js";
import { acceptingServer, dispatch, execParams, type OtherServers } from "./dispatch.js";
import { Effects } from "./effects.js";
import type { Owners } from "./owners.js";
import type { ProducerRegistry } from "./producer-registry.js";
import { invalid, noChannel, notAccepted, notOwner, notPending, requireAccepted, streamClosed } from "./refusals.js";
import { connectionResolver, describeCaller } from "./resolvers.js";
import { attachRunner } from "./runner-attach.js";
import { type RunnerRegistry, refuseSandbox } from "./runner-registry.js";
import { sandboxFor } from "./sandbox-mode.js";
import { channelPath, insertUnderFreeSlug } from "./slug.js";
import { ENTRY } from "./status.js";
import { type Outcome, outcomeAttributes, outcomeStatus, summaryLine } from "./summary.js";
import { newResumeToken, tokenKey, tokenMatches } from "./tokens.js";
import { type Caller, type Cell, type Operation, refusal, stateOf, type TransitionState, transition } from "./transitions.js";
import { producerWire } from "./views.js";
import type { WatcherHub } from "./watchers.js";

// The handlers, plugins and the agent loop import these from here.
export type { AcceptResult, ClaimResult, CoreDeps, FinishResult, ForwardedAccept, ProducerTarget, ProposalInput } from "./deps.js";
export { proposalNotice } from "./effects.js";
export { ABORT_RESOLVER, connectionResolver, describeCaller } from "./resolvers.js";

/** The channel that holds what clients sent to a producer's stdin. */
export const INPUT_CHANNEL = 0;

/** The method each operation is called through, as refusals name it. */
const METHOD: Partial<Record<Operation, string>> = { append: "stream", complete: "stream/completed", abort: "stream/aborted", claim: "stream/claim" };

/** Where a channel's appends go, kept while it is open. */
interface AppendTarget {
  projectId: number;
  run: string;
  channel: number;
  entryId: number;
  producerId: number;
}

/** The target of (project, run, channel) among those of one path. */
function findTarget(targets: AppendTarget[] | undefined, projectId: number, run: string, channel: number): AppendTarget | undefined {
  if (targets) for (const t of targets) if (t.projectId === projectId && t.run === run && t.channel === channel) return t;
  return undefined;
}

/**
 * The one owner of the producer lifecycle. Every status change of a proposal
 * or a data channel happens here, each stored, announced and hooked exactly
 * once. Which operation may happen from which state, for whom, and what it
 * leads to is the table in transitions.ts: each operation reads the
 * producer's state, asks the table, then runs its stages (checks, the store
 * write, effects.ts, dispatch.ts).
 *
 * A producer has exactly one owner: the runner it was dispatched to, or the
 * connection that accepted it with runner "self". Ownership is durable as the
 * owner's name and resume-token key in the log entry, and live as one
 * connection in `Owners`.
 */
export class Lifecycle {
  /**
   * Channel lookups for appends, by path (the string a chunk's params already hold: no key made per chunk), then
   * (project, run, channel); dropped when the producer finishes.
   */
  readonly #targets = new Map<string, AppendTarget[]>();
  /** The paths of each producer's targets. */
  readonly #targetPaths = new Map<number, string[]>();
  /** The other servers sharing the database (set once the cluster link exists). */
  #others: OtherServers | null = null;
  readonly #effects: Effects;

  constructor(
    private readonly deps: CoreDeps,
    readonly producers: ProducerRegistry,
    private readonly owners: Owners,
    readonly runners: RunnerRegistry,
    readonly watchers: WatcherHub,
  ) {
    this.#effects = new Effects(deps, watchers);
  }

  get #repos(): Repositories {
    return this.deps.repos;
  }

  useCluster(link: OtherServers): void {
    this.#others = link;
  }

  /** accept, passed on by another server because the runner it names (or the project's default) is attached here. */
  acceptForwarded(project: ProjectRef, target: ProducerTarget, options: ForwardedAccept): Promise<AcceptResult> {
    return this.#accept(project, target, { ...options, self: null, forwarded: true });
  }

  /** The run of the caller's project with this alias; another project's run is simply not found. */
  async requireRun(project: ProjectRef, alias: string): Promise<RunRow> {
    const run = await this.#repos.runs.findRun(project.id, alias);
    if (!run) throw notFound(`Run "${alias}"`, { run: alias });
    return run;
  }

  /** The run and a producer's log entry named by `{run, path}` in the caller's project. */
  async requireLog(project: ProjectRef, alias: string, path: string): Promise<{ run: RunRow; log: EntryRow }> {
    const run = await this.requireRun(project, alias);
    const log = await this.#repos.entries.findEntry(run.id, path);
    if (log?.scheme !== "log") throw notFound(`Producer "${path}"`, { run: alias, path });
    return { run, log };
  }

  /** The producer's state and its channels (none are read before it is accepted). */
  async #state(log: EntryRow): Promise<{ state: TransitionState; channels: EntryRow[] }> {
    const channels = log.status === ENTRY.done ? await this.#repos.entries.listChannels(log.id) : [];
    return {
      state: stateOf(
        log.status,
        channels.map((c) => c.status),
      ),
      channels,
    };
  }

  /** What the table says `operation` by `caller` does from `state`; a refusal is thrown as `refused` words it. */
  #follow(state: TransitionState, operation: Operation, caller: Caller, refused: (error: ErrorName) => Error): Extract<Cell, { to: unknown }> {
    const cell = transition(state, operation, caller);
    const error = refusal(cell);
    if (error) throw refused(error);
    return cell as Extract<Cell, { to: unknown }>;
  }

  // ---- propose · accept · reject · start ------------------------------------------------------

  /** propose: the log entry at 202, `run/proposal` to every connection of the project. */
  async propose(project: ProjectRef, run: RunRow, input: ProposalInput): Promise<EntryRow> {
    const producer = this.producers.get(input.tool);
    if (!producer)
      throw invalid(
        "tool",
        `unknown tool "${input.tool}"; registered: ${this.producers
          .list()
          .map((p) => p.tool)
          .join(", ")}`,
      );
    const allowOutside = this.deps.config.limits.allowCwdOutsideRoot;
    const filtered = await this.deps.applyFilter("proposal:create", {
      tool: input.tool,
      command: input.command,
      cwd: confineCwd(project, input.cwd, allowOutside),
      env: input.env ?? {},
    });
    const cwd = confineCwd(project, filtered.cwd ?? undefined, allowOutside);
    // Nothing that makes the loader run code of the proposal's choosing, before any sandbox exists (or in none).
    const loader = loaderVariables(filtered.env);
    if (loader.length > 0)
      throw new SpoolError("INVALID_PARAMS", `Invalid params: ${loaderVariablesMessage(loader)}`, {
        issues: [{ path: "env", message: loaderVariablesMessage(loader) }],
        names: loader,
      });
    const proposed = input.runner === undefined ? undefined : await this.#proposedRunner(project, input.runner);
    const sandbox = await sandboxFor(this.deps.config, this.runners, project, producer, input.sandbox, proposed);
    // Proposed for a runner that could never run it in its mode: it could only be rejected (an accept may not pick another runner).
    if (proposed?.sandbox) refuseSandbox({ name: proposed.name, sandbox: proposed.sandbox }, { readOnly: sandbox.mode === "read-only", mode: sandbox.mode });
    // Named none: the runner a plain accept (or a rule) sends it to is resolved now, recorded and shown (SPEC §5, "always allow").
    const defaultRunner = proposed ? null : await this.#defaultRunner(project);
    const now = Date.now();
    const row = await insertUnderFreeSlug(this.#repos.entries, run, producer.tool, filtered.command, (slug) => ({
      run_id: run.id,
      scheme: "log",
      turn: run.turn,
      status: ENTRY.proposed,
      attributes: JSON.stringify({
        tool: producer.tool,
        command: filtered.command,
        cwd,
        env: filtered.env,
        ...(input.timeout_ms ? { timeoutMs: input.timeout_ms } : {}),
        ...(input.tty ? { tty: { cols: input.tty.cols, rows: input.tty.rows } } : {}),
        ...(input.background ? { background: true } : {}),
        ...(proposed ? { runner: proposed.name } : defaultRunner !== null ? { defaultRunner } : {}),
        slug,
        readOnly: sandbox.mode === "read-only",
        sandbox: sandbox.mode,
        ...(sandbox.mode === "workspace-write" ? { sandboxNetwork: this.deps.config.sandboxNetwork } : {}),
        ...(sandbox.reason ? { sandboxReason: sandbox.reason } : {}),
        proposedBy: input.proposedBy,
        ...input.extra,
      }),
      created_at: now,
      updated_at: now,
    }));
    this.deps.observer?.proposed(project, run, row, input.traceparent);
    // A rule stored for commands in the configured mode does not let one that asks to leave the sandbox through unseen.
    const ruleApplies = !(input.sandbox === "full" && this.deps.config.sandbox !== "full");
    const goesTo = proposed?.name ?? defaultRunner;
    const rule = ruleApplies && goesTo !== null ? await matchingRule(this.#repos, { runId: run.id, facts: producerWire(row, []), runner: goesTo }) : undefined;
    if (rule) {
      // An "always allow" rule of the run matches: the server accepts it itself, and nobody is asked.
      await this.#effects.hookStatus(project, run, row, null);
      try {
        await this.#accept(project, { run: run.alias, path: row.path }, { resolver: ruleResolver(rule), resolvedBy: describeRule(rule), self: null });
        return (await this.#repos.entries.findEntryById(row.id)) ?? row;
      } catch (error) {
        // No runner can take it now (or it was decided meanwhile): it waits for a person like any other proposal.
        this.deps.log.warn(`rule #${rule.id} matched ${row.path} but could not accept it: ${error instanceof Error ? error.message : String(error)}`, {
          project: project.name,
          run: run.alias,
          path: row.path,
        });
        const current = await this.#repos.entries.findEntryById(row.id);
        if (current?.status !== ENTRY.proposed) return current ?? row;
        this.#effects.announceProposal(project, run, current);
        return current;
      }
    }
    this.#effects.announceProposal(project, run, row);
    await this.#effects.hookStatus(project, run, row, null);
    return row;
  }

  /**
   * The runner a proposal names: attached here (or the embedded one), or to another server sharing the
   * database (its sandbox is not known here: null). Anything else, another project's runners included, is NO_RUNNER.
   */
  async #proposedRunner(project: ProjectRef, name: string): Promise<{ name: string; sandbox: SandboxInfo | null }> {
    if (name === "self")
      throw invalid("runner", 'a proposal cannot name "self": it is the accepting connection, chosen by whoever accepts a proposal that names no runner');
    const here = await this.runners.named(project.id, name);
    if (here) return here;
    if (this.#others?.shared && (await this.#others.runnerServer(project.id, name)) !== null) return { name, sandbox: null };
    const names = this.runners.names(project.id);
    throw new SpoolError(
      "NO_RUNNER",
      `No runner named "${name}" is attached to project "${project.name}" (${names.length > 0 ? `attached: ${names.join(", ")}` : "none is attached"}); propose it for one of them, or for none`,
      { runner: name, runners: names },
    );
  }

  /**
   * The runner a plain accept of a proposal naming none goes to, as resolved when it is proposed: the project's
   * default runner (attached here, else to another server sharing the database), else the embedded one; null when
   * there is none.
   */
  async #defaultRunner(project: ProjectRef): Promise<string | null> {
    const here = this.runners.list(project.id).find((r) => r.default);
    if (here) return here.name;
    const there = this.#others?.shared ? await this.#others.defaultRunnerName(project.id) : null;
    return there ?? this.runners.embeddedName;
  }

  /**
   * The runner an accept uses: the one it names, else the one the proposal named. Naming another runner than
   * the proposal did is a CONFLICT: the person deciding saw the proposed one.
   */
  #acceptRunner(path: string, proposed: string | null, named: string | undefined): string | undefined {
    if (proposed === null || named === undefined || named === proposed) return named ?? proposed ?? undefined;
    throw conflict(
      `"${path}" was proposed for runner "${proposed}", and that is the runner everyone was shown; accept it without a runner (or with "${proposed}"), or reject it and propose it again for "${named}"`,
      { runner: proposed, requested: named },
    );
  }

  /** The run and log of a proposal `operation` (accept or reject) may decide, as the table says. */
  async #requirePending(project: ProjectRef, alias: string, path: string, operation: "accept" | "reject"): Promise<{ run: RunRow; log: EntryRow }> {
    const { run, log } = await this.requireLog(project, alias, path).catch((error: unknown) => {
      if (error instanceof SpoolError && error.errorName === "NOT_FOUND" && error.details.path) throw notFound(`Proposal "${path}"`, { run: alias, path });
      throw error;
    });
    const { state } = await this.#state(log);
    this.#follow(state, operation, "owner", () => notPending(path, log.status));
    return { run, log };
  }

  /**
   * accept: the log entry 202 → 200 and its data channels at 102, owned by
   * the chosen runner (which gets `runner/exec`) or, for "self", by `caller`.
   */
  async accept(
    caller: ConnectionHandle,
    project: ProjectRef,
    target: ProducerTarget,
    options: { runner?: string | undefined; reason?: string | undefined; always?: boolean | undefined },
  ): Promise<AcceptResult> {
    return this.#accept(project, target, {
      runner: options.runner,
      reason: options.reason,
      resolver: connectionResolver(caller),
      resolvedBy: describeCaller(caller),
      self: caller,
      ...(options.always ? { always: describeCaller(caller) } : {}),
    });
  }

  /**
   * accept, for a client (`self` is its connection, the owner when the runner is "self") or for a rule
   * (`self` null). `always` names who asked to store an "always allow" rule for the proposal's tool,
   * command, cwd and env.
   */
  async #accept(
    project: ProjectRef,
    target: ProducerTarget,
    options: {
      runner?: string | undefined;
      reason?: string | undefined;
      always?: string;
      resolver: ResolverOut;
      resolvedBy: string;
      self: ConnectionHandle | null;
      /** Passed on by another server: taken here, never passed on again. */
      forwarded?: boolean;
    },
  ): Promise<AcceptResult> {
    const { run, log } = await this.#requirePending(project, target.run, target.path, "accept");
    const proposal = producerFromRow(log);
    // At the pending stage the log's `runner` is the proposed one (the decision overwrites it with the one that took it).
    // Named by neither: the runner recorded (and shown) when it was proposed, even if the project's default changed since.
    const requested = this.#acceptRunner(target.path, proposal.runner, options.runner) ?? proposal.defaultRunner ?? undefined;
    // A runner attached to another server sharing the database: that server accepts it and dispatches it.
    const server = options.forwarded ? null : await acceptingServer(this.#others, this.runners, project, requested);
    if (server !== null) {
      const { reason, always, resolver, resolvedBy } = options;
      return this.#others!.acceptElsewhere(server, project, target, { runner: requested, reason, always, resolver, resolvedBy });
    }
    const tool = proposal.tool;
    const producer = this.producers.get(tool);
    if (!producer) throw new SpoolError("UNSUPPORTED", `The "${tool}" producer is no longer loaded`);
    // Read-only work (the env producer, and so every command of an ask run) only goes to a runner with a read-only sandbox.
    const readOnly = producer.readOnly === true || proposal.readOnly;
    // The mode recorded at proposal time (none recorded: a proposal from before sandbox modes, which ran without one).
    const mode = readOnly ? "read-only" : proposal.sandbox === "workspace-write" ? "workspace-write" : "full";
    if (requested === "self" && !options.self) throw conflict('a rule cannot accept with runner "self"');
    const owner = await this.runners.select(project, requested, { readOnly, mode });
    const selfToken = owner === "self" ? newResumeToken() : undefined;
    const runnerName = owner === "self" ? "self" : owner.name;
    const { resolvedBy, resolver } = options;
    const plan = Object.entries(producer.channels).map(([n, name]) => ({
      channel: Number(n),
      path: channelPath(tool, log.turn, proposal.slug, Number(n)),
      attributes: { command: proposal.command, channel: Number(n), name, log: log.path },
    }));
    const decision = {
      decision: "accept",
      runner: runnerName,
      ownerKey: owner === "self" ? tokenKey(selfToken!) : owner.tokenKey,
      resolvedBy,
      ...(options.reason ? { reason: options.reason } : {}),
    };
    const opened = await this.#repos.producers.openChannels(log, { from: ENTRY.proposed, to: ENTRY.done, set: decision }, plan, ENTRY.streaming);
    if (!opened) throw conflict(`"${target.path}" was resolved by someone else`);
    const { log: accepted, channels: rows } = opened;
    await this.#own(log.id, owner === "self" ? options.self! : owner.connection, owner === "self" ? "self" : "runner");
    // The rule holds the facts everyone was shown (the pending log entry's) and the runner the command went to.
    const subject: RuleSubject = { runId: run.id, facts: producerWire(log, []), runner: runnerName };
    const rule = options.always === undefined ? undefined : await storeRule(this.#repos, subject, options.always);
    const channels = rows.map((r) => ({ channel: r.channel!, name: producer.channels[r.channel!]!, path: r.path, status: r.status }));
    await this.#effects.resolved(project, run, accepted, {
      decision: "accept",
      runner: runnerName,
      resolvedBy,
      resolver,
      reason: options.reason ?? null,
      channels,
    });
    if (owner !== "self") {
      const params = execParams(this.deps.config, project, run, accepted, owner, channels, this.producers.get(tool)?.readOnly === true);
      this.deps.observer?.dispatched(accepted, owner.name);
      void dispatch(owner, params, {
        started: (where) => this.start(project, run, accepted, owner.name, where),
        lost: (reason) => this.lose(log.id, reason),
      });
    }
    return {
      path: log.path,
      status: ENTRY.done,
      runner: runnerName,
      channels,
      ...(selfToken ? { resumeToken: selfToken } : {}),
      ...(rule ? { rule: rule.id } : {}),
    };
  }

  /** reject: the log entry 202 → 403. `by` names who decided (a client, or run/abort); `resolver` says which (default: a client named `by`). */
  async reject(project: ProjectRef, target: ProducerTarget, options: { by: string; resolver?: ResolverOut; reason?: string | undefined }): Promise<EntryRow> {
    const { run, log } = await this.#requirePending(project, target.run, target.path, "reject");
    const reason = options.reason ?? "rejected";
    const rejected = await this.#repos.producers.moveStatus(log, ENTRY.proposed, ENTRY.rejected, { decision: "reject", reason, resolvedBy: options.by });
    if (!rejected) throw conflict(`"${target.path}" was resolved by someone else`);
    await this.#effects.resolved(project, run, rejected, {
      decision: "reject",
      runner: null,
      resolvedBy: options.by,
      resolver: options.resolver ?? { kind: "connection", connectionId: null, client: options.by, rule: null },
      reason,
      channels: [],
    });
    return rejected;
  }

  /** start: the owner runs the producer; where (pid, container, host) is recorded on the log entry. */
  async start(project: ProjectRef, run: RunRow, log: EntryRow, runner: string, process: Record<string, unknown>): Promise<boolean> {
    // Cancelled (or lost) before the runner's reply came back: nothing is running to record.
    const channels = await this.#repos.entries.listChannels(log.id);
    const state = stateOf(
      channels.length > 0 ? ENTRY.done : log.status,
      channels.map((c) => c.status),
    );
    const cell = this.#follow(state, "start", "owner", (error) => new SpoolError(error, `"${log.path}" cannot start (${state})`));
    if (cell.notices.length === 0) return false;
    await this.#effects.started(project, run, log, runner, process);
    return true;
  }

  // ---- append ----------------------------------------------------------------------------------

  /** append: one chunk to one channel, by the producer's owner only. Costs the same whatever the channel holds. */
  async append(
    caller: ConnectionHandle,
    project: ProjectRef,
    params: { run: string; path: string; channel: number; data: Buffer; seq?: number | undefined },
    /** Called once the chunk is queued for its commit, behind the chunks queued before it. */
    queued?: () => void,
  ): Promise<{ channel: number; seq: number; bytes: number; duplicate: boolean }> {
    let target = findTarget(this.#targets.get(params.path), project.id, params.run, params.channel);
    // The owner of a channel it has written before goes straight to the store; anything else asks the table.
    if (!target || !this.owners.isOwner(target.producerId, caller)) target = await this.#appendTarget(caller, project, params);
    const observer = this.deps.observer;
    const arrived = observer ? performance.now() : 0;
    const appended = this.#repos.chunks.append(target.entryId, params.data, params.seq, ENTRY.streaming);
    queued?.();
    const outcome = await appended;
    switch (outcome.kind) {
      case "closed":
        throw streamClosed(params.channel, params.path, outcome.status);
      case "gap":
        throw new SpoolError("SEQ_GAP", `seq ${params.seq} skips ahead; the next expected is ${outcome.expected}`, { expected: outcome.expected });
      case "mismatch":
        throw conflict(`seq ${outcome.seq} of channel ${params.channel} is stored with other bytes; a retry must resend the same chunk`, { seq: outcome.seq });
      case "duplicate":
        return { channel: params.channel, seq: outcome.seq, bytes: outcome.bytes, duplicate: true };
      case "appended":
        if (observer) observer.appended(params.data.length, (performance.now() - arrived) / 1000);
        this.watchers.publish(target.entryId, outcome.seq, params.data);
        if (observer && this.watchers.watching(target.entryId)) observer.delivered((performance.now() - arrived) / 1000);
        this.deps.bus.chunk(target.entryId, outcome.seq);
        return { channel: params.channel, seq: outcome.seq, bytes: outcome.bytes, duplicate: false };
    }
  }

  /** The channel an append goes to, once the table lets `caller` append there; kept for the next appends while it is open. */
  async #appendTarget(caller: ConnectionHandle, project: ProjectRef, params: { run: string; path: string; channel: number }): Promise<AppendTarget> {
    const { log } = await this.requireLog(project, params.run, params.path);
    const { state, channels } = await this.#state(log);
    const channel = channels.find((c) => c.channel === params.channel);
    if (!channel) throw noChannel(params.run, params.path, params.channel);
    this.#follow(state, "append", this.owners.isOwner(log.id, caller) ? "owner" : "other", (error) =>
      error === "STREAM_CLOSED"
        ? streamClosed(params.channel, params.path, channel.status)
        : error === "NOT_OWNER"
          ? notOwner(params.path, METHOD.append!)
          : noChannel(params.run, params.path, params.channel),
    );
    const target: AppendTarget = { projectId: project.id, run: params.run, channel: params.channel, entryId: channel.id, producerId: log.id };
    const same = this.#targets.get(params.path);
    if (channel.status === ENTRY.streaming && !findTarget(same, project.id, params.run, params.channel)) {
      this.#targets.set(params.path, [...(same ?? []), target]);
      this.#targetPaths.set(log.id, [...(this.#targetPaths.get(log.id) ?? []), params.path]);
    }
    return target;
  }

  // ---- input: channel 0 -------------------------------------------------------------------------

  /**
   * open (channel 0): the producer's input channel, created at 102 with the first input (or end of input) a
   * client sends, so the record shows what was typed; it finishes with the producer's other channels.
   * Null when the producer has finished.
   */
  async openInput(log: EntryRow): Promise<EntryRow | null> {
    requireAccepted(log);
    const producer = producerFromRow(log);
    const path = channelPath(producer.tool, log.turn, producer.slug, INPUT_CHANNEL);
    return this.#repos.producers.openChannel(
      log,
      { channel: INPUT_CHANNEL, path, attributes: { command: producer.command, channel: INPUT_CHANNEL, name: "stdin", log: log.path } },
      ENTRY.streaming,
    );
  }

  /** The producer's live owner, to relay input, signals and resizes to; undefined while it has none. */
  ownerOf(producerId: number): { connection: ConnectionHandle; kind: "runner" | "self" } | undefined {
    return this.owners.ownerOf(producerId);
  }

  // ---- complete · abort · cancel · lose --------------------------------------------------------

  /** complete or abort, by the owner. A producer that has already finished reports its status and changes nothing. */
  async finishByOwner(
    caller: ConnectionHandle,
    project: ProjectRef,
    target: ProducerTarget,
    outcome: Outcome & { kind: "completed" | "aborted" },
  ): Promise<FinishResult> {
    const { run, log } = await this.requireLog(project, target.run, target.path);
    const operation = outcome.kind === "completed" ? "complete" : "abort";
    return this.#finishAs(operation, this.owners.isOwner(log.id, caller) ? "owner" : "other", project, run, log, outcome);
  }

  /**
   * cancel, by anyone in the project (`by`: who, when known): channels 499 and `stream/cancelled`, so the owner
   * kills the work. The duration recorded runs from the acceptance (when its channels opened) to now: the
   * owner's own figure never arrives, as a finished producer takes no more.
   */
  async cancel(project: ProjectRef, target: ProducerTarget, reason: string, by?: string): Promise<FinishResult> {
    const { run, log } = await this.requireLog(project, target.run, target.path);
    const opened = log.status === ENTRY.done ? (await this.#repos.entries.listChannels(log.id)).map((c) => c.created_at) : [];
    const duration = opened.length > 0 ? Math.max(0, Date.now() - Math.min(...opened)) : undefined;
    const result = await this.#finishAs("cancel", "owner", project, run, log, { kind: "cancelled", reason, duration, by });
    if (result.changed) this.#effects.cancelled(project, run, log, reason);
    return result;
  }

  /** lose: the server ends a producer whose owner is gone (runner lost, owner lost, interrupted by a restart, failed dispatch). */
  async lose(producerId: number, reason: string): Promise<FinishResult | null> {
    const log = await this.#repos.entries.findEntryById(producerId);
    const run = log && (await this.#repos.runs.findRunById(log.run_id));
    const project = run && (await this.#repos.projects.findProjectById(run.project_id));
    if (!log || !run || !project) return null;
    return this.#finishAs("lose", "owner", { id: project.id, name: project.name, root: project.root }, run, log, { kind: "aborted", reason });
  }

  /** A finishing operation as the table has it: refused, reported as it stands (already finished), or done. */
  async #finishAs(operation: Operation, caller: Caller, project: ProjectRef, run: RunRow, log: EntryRow, outcome: Outcome): Promise<FinishResult> {
    const { state, channels } = await this.#state(log);
    const cell = this.#follow(state, operation, caller, (error) => (error === "NOT_OWNER" ? notOwner(log.path, METHOD[operation]!) : notAccepted(log)));
    if (cell.to === state) return finishResult(log, channels, false, channels[0]?.status ?? log.status);
    return this.#finish(project, run, log, outcome);
  }

  /**
   * Ends every open channel with the outcome's status, rewrites the log entry
   * to one line, ends watchers and announces it; a second call changes nothing.
   */
  async #finish(project: ProjectRef, run: RunRow, log: EntryRow, outcome: Outcome): Promise<FinishResult> {
    const status = outcomeStatus(outcome);
    const details = outcomeAttributes(outcome);
    const { command } = producerFromRow(log);
    const { changed, channels } = await this.#repos.producers.closeChannels(log, {
      open: ENTRY.streaming,
      status,
      channelAttributes: details,
      log: (rows) => ({
        set: {
          ...details,
          status,
          channels: Object.fromEntries(rows.map((r) => [String(r.channel), { path: r.path, bytes: r.bytes, lines: lineCount(r) }])),
        },
        body: summaryLine(command, outcome, rows),
      }),
    });
    if (changed) {
      this.#forget(log.id);
      if (this.deps.bus.shared) await this.#repos.cluster.dropOwner(log.id);
      await this.#effects.finished(project, run, log, channels, status, outcome);
    }
    return finishResult(log, channels, changed, status);
  }

  // ---- ownership: claims, runners, connections that leave, restarts ------------------------------

  /** Makes `connection` the producer's owner; with servers sharing the database, the row says it is on this one. */
  async #own(producerId: number, connection: ConnectionHandle, kind: "runner" | "self"): Promise<void> {
    this.owners.set(producerId, connection, kind);
    if (!this.deps.bus.shared) return;
    await this.#repos.cluster.setOwner(producerId, this.deps.bus.serverId);
    this.deps.bus.publish({ t: "owned", producer: producerId, server: this.deps.bus.serverId });
  }

  /** Another server's connection owns the producer now: this server's owner (or grace) lets go of it. */
  ownedElsewhere(producerId: number): void {
    this.#forget(producerId);
  }

  #forget(producerId: number): void {
    this.owners.forget(producerId);
    for (const path of this.#targetPaths.get(producerId) ?? []) {
      const kept = (this.#targets.get(path) ?? []).filter((t) => t.producerId !== producerId);
      if (kept.length > 0) this.#targets.set(path, kept);
      else this.#targets.delete(path);
    }
    this.#targetPaths.delete(producerId);
  }

  /** Another server finished the producer: nobody here owns it any more. */
  finishedElsewhere(producerId: number): void {
    this.#forget(producerId);
  }

  /** A connection shows a producer's resume token and becomes its owner (after a reconnect or a restart). */
  async claim(caller: ConnectionHandle, project: ProjectRef, target: ProducerTarget, token: string): Promise<ClaimResult> {
    const { log } = await this.requireLog(project, target.run, target.path);
    const { state, channels } = await this.#state(log);
    const holder = log.status === ENTRY.done && tokenMatches(token, producerFromRow(log).ownerKey);
    this.#follow(state, "claim", holder ? "owner" : "other", () => notOwner(target.path, METHOD.claim!));
    const open = state === "streaming";
    if (open) await this.#own(log.id, caller, this.runners.runnerOf(caller) ? "runner" : "self");
    return {
      path: log.path,
      status: open ? ENTRY.streaming : (channels[0]?.status ?? log.status),
      channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, lastSeq: c.last_seq })),
    };
  }

  /** `runner/attach` (runner-attach.ts): the runner is attached and takes back the producers it resumes. */
  attachRunner(connection: ConnectionHandle, project: ProjectRef, params: z.output<typeof RunnerAttachParams>): Promise<z.input<typeof RunnerAttachResult>> {
    const own = (id: number, owner: ConnectionHandle, kind: "runner") => this.#own(id, owner, kind);
    return attachRunner({ deps: this.deps, runners: this.runners, owners: this.owners, others: this.#others, own }, connection, project, params);
  }

  /** The producers a runner is executing (open channels), for runner/list. */
  async runningOn(project: ProjectRef, runner: string): Promise<number> {
    return (await this.#repos.producers.listRunnerProducers(project.id, runner, ENTRY.streaming)).length;
  }
  /** A connection went away: the producers it owned wait the grace period for their owner, then end 499. */
  connectionClosed(connection: ConnectionHandle): void {
    const owned = this.owners.release(connection);
    const grace = this.deps.config.runnerGraceMs;
    const runner = this.runners.detach(connection, owned.length > 0 ? grace : 0);
    if (runner && this.deps.bus.shared && !runner.embedded) {
      this.#repos.cluster
        .unplaceRunner(runner.projectId, runner.name, this.deps.bus.serverId)
        .catch((error: unknown) => this.deps.log.warn(`cluster: could not unlist runner ${runner.name}: ${String(error)}`));
    }
    if (owned.length === 0) return;
    const who = runner ? `runner ${runner.name}` : `connection ${connection.id}`;
    this.deps.log.warn(`${who} went away owning ${owned.length} producer(s); they have ${grace} ms for it to come back`);
    // A runner whose commands do not die with it (it said so at attach) may have left them running: its producers say so.
    const lost = runner?.container?.diesWithRunner === false ? "runner lost, may still be running" : "runner lost";
    for (const { id, kind } of owned) this.#graceThenLose(id, kind === "runner" ? lost : "owner lost");
  }

  /**
   * After the grace, the producer ends 499 unless its owner came back: here (a live owner), or on another
   * server sharing the database (its owner row names that server now).
   */
  #graceThenLose(producerId: number, reason: string): void {
    this.owners.startGrace(producerId, this.deps.config.runnerGraceMs, () => {
      void (async () => {
        if (this.deps.bus.shared && (await this.#repos.cluster.ownerServer(producerId)) !== this.deps.bus.serverId) return;
        await this.lose(producerId, reason);
      })().catch((error: unknown) => this.deps.log.error(`could not end producer ${producerId} (${reason})`, error));
    });
  }

  /**
   * Producers left streaming by a server that stopped (this one before a restart, or another one sharing the
   * database) are adopted by this server, each by one server only (a lock in the database decides); they wait
   * the grace for their owner to claim them, then end 499 with `reason`.
   */
  async adoptOrphans(reason = "interrupted"): Promise<void> {
    const bus = this.deps.bus;
    const orphans = bus.shared
      ? await this.#repos.cluster.adoptOrphans(bus.serverId, await bus.alive(), ENTRY.streaming)
      : await this.#repos.entries.listProducersWithChannelsAt(ENTRY.streaming);
    if (orphans.length === 0) return;
    this.deps.log.info(`${orphans.length} producer(s) were streaming when their server stopped; they have ${this.deps.config.runnerGraceMs} ms to resume`);
    for (const id of orphans) this.#graceThenLose(id, reason);
  }

  async stop(): Promise<void> {
    this.owners.stop();
    await this.runners.stop();
  }
}

function finishResult(log: EntryRow, channels: EntryRow[], changed: boolean, status: number): FinishResult {
  return {
    path: log.path,
    status: channels[0]?.status ?? status,
    changed,
    channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, bytes: c.bytes, lines: lineCount(c) })),
  };
}
