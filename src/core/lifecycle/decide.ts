import { fullRefusal, mayAcceptFull } from "../../protocol/full-acceptors.js";
import { keyWords, type RunnerRefValue, type RunnerTarget, targetKey } from "../../protocol/pool-keys.js";
import type { PrincipalRef } from "../../protocol/roles.js";
import type { SandboxModeName } from "../../protocol/sandbox.js";
import type { PoolFact } from "../../protocol/views.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import { conflict, notFound, SpoolError } from "../../rpc/errors.js";
import { type Producer, producerFromRow } from "../../store/producer-row.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import { type RuleSubject, storeRule } from "../allow-rules.js";
import type { AcceptResult, ProducerTarget, ResolverOut } from "../deps.js";
import { newResumeToken, tokenKey } from "../producers/resume-tokens.js";
import { channelPath } from "../producers/slug.js";
import { notPending } from "../refusals.js";
import { connectionResolver, describeCaller } from "../resolvers.js";
import { acceptingServer, dispatch, execParams } from "../runners/dispatch.js";
import { type Admits, admitted, inTarget, poolAdmits, poolFact, poolTarget, type RunnerFacts, runnerAdmits, serves } from "../runners/pools.js";
import { type AttachedRunner, runnerClaim } from "../runners/registry.js";
import { ENTRY } from "../status.js";
import { producerWire } from "../views.js";
import { lose } from "./finish.js";
import { own } from "./ownership.js";
import { requireClaimHolds, requireFactsHold } from "./runner-moved.js";
import { follow, producerState, requireLog, type Stage } from "./stage.js";
import { stateOf } from "./transitions.js";

/*
 * The decision on a proposal: accept (its channels open, then runners/dispatch.ts sends it to its runner, whose reply
 * starts it; or, no runner of its pool being free, it waits in the pool's queue for take.ts) or reject.
 */

type PoolTarget = Exclude<RunnerTarget, { kind: "runner" }>;

/** How an accept is asked for: by a client (`self` is its connection), a rule (`self` null), or another server (`forwarded`). */
export interface AcceptOptions {
  /**
   * Who accepts: the client's principal, the principal that set the rule, or the one another server passed on. A command in
   * sandbox mode full is accepted only by one `sandboxFullAcceptors` names (undefined: nobody, so never full).
   */
  acceptor?: PrincipalRef | undefined;
  /** A runner's name, "self", or a pool (`{pool}`, `{labels}`). */
  runner?: RunnerRefValue | undefined;
  reason?: string | undefined;
  /** Who asked to store an "always allow" rule for the proposal's tool, command, cwd and env. */
  always?: string;
  resolver: ResolverOut;
  resolvedBy: string;
  /** The accepting client's connection, the owner when the runner is "self"; null for a rule or a forwarded accept. */
  self: ConnectionHandle | null;
  /** Passed on by another server: taken here, never passed on again. */
  forwarded?: boolean;
  /** The facts revision the person was shown (run/resolve's `facts`); undefined: not compared. */
  facts?: number | undefined;
}

/** What a client's accept asks for (run/resolve's params). */
export interface AcceptRequest {
  runner?: RunnerRefValue | undefined;
  reason?: string | undefined;
  always?: boolean | undefined;
  how?: "key" | "flag" | undefined;
  /** The facts revision the person was shown. */
  facts?: number | undefined;
}

/**
 * accept, by a client: the log entry 202 → 200 and its data channels at 102, owned by the chosen runner (which
 * gets `runner/exec`) or, for "self", by `caller`.
 */
export function accept(stage: Stage, caller: ConnectionHandle, project: ProjectRef, target: ProducerTarget, options: AcceptRequest): Promise<AcceptResult> {
  return acceptAs(stage, project, target, {
    acceptor: caller.principal,
    facts: options.facts,
    runner: options.runner,
    reason: options.reason,
    resolver: connectionResolver(caller, options.how),
    resolvedBy: describeCaller(caller),
    self: caller,
    ...(options.always ? { always: describeCaller(caller) } : {}),
  });
}

/** accept, for a client, a rule or another server (AcceptOptions). */
export async function acceptAs(stage: Stage, project: ProjectRef, target: ProducerTarget, options: AcceptOptions): Promise<AcceptResult> {
  const { runners } = stage;
  const { run, log } = await requirePending(stage, project, target.run, target.path, "accept");
  const proposal = producerFromRow(log);
  // A pool (the proposal's, or the accept's for a proposal that named none): one free runner of it takes it, from any server.
  const pool = acceptPool(stage, target.path, proposal, options.runner);
  // At the pending stage the log's `runner` is the proposed one (the decision overwrites it with the one that took it).
  // Named by neither: the runner recorded (and shown) when it was proposed, even if the project's default changed since.
  const requested = pool
    ? undefined
    : (acceptRunner(target.path, proposal.runner, options.runner as string | undefined) ?? proposal.defaultRunner ?? undefined);
  // A runner attached to another server sharing the database: that server accepts it and dispatches it.
  // Only on the facts that hold: a runner's server that stopped is replaced, announced again, and decided again.
  await requireFactsHold(stage, proposal, options.facts);
  // Before it is passed on or anything is opened: a command without a sandbox is the machine's, not a project's.
  requireFullAcceptor(stage, proposal, options.acceptor);
  const recorded = { name: proposal.runner ?? proposal.defaultRunner, own: proposal.runnerClaim?.own === true, server: proposal.runnerServer };
  const server = options.forwarded || pool ? null : await acceptingServer(stage.others, runners, project, requested, recorded);
  if (server !== null) {
    const { reason, always, resolver, resolvedBy, facts, acceptor } = options;
    return stage.others!.acceptElsewhere(server, project, target, { acceptor, runner: requested, reason, always, resolver, resolvedBy, facts });
  }
  const tool = proposal.tool;
  const producer = stage.producers.get(tool);
  if (!producer) throw new SpoolError("UNSUPPORTED", `The "${tool}" producer is no longer loaded`);
  // Read-only work (the env producer, and so every command of an ask run) only goes to a runner with a read-only sandbox.
  const readOnly = producer.readOnly === true || proposal.readOnly;
  // The mode recorded at proposal time (none recorded: a proposal from before sandbox modes, which ran without one).
  const mode = readOnly ? "read-only" : proposal.sandbox === "workspace-write" ? "workspace-write" : "full";
  const egress = mode === "workspace-write" && proposal.egress !== null;
  if (requested === "self" && !options.self) throw conflict('a rule cannot accept with runner "self"');
  let place: Place;
  if (pool) place = await placeInPool(stage, project, pool, proposal, mode, egress);
  else {
    const owner = await runners.select(project, requested, { readOnly, mode, egress });
    // The runner shown, with the claim shown: another principal's runner under its name is not it.
    if (owner !== "self") await requireClaimHolds(stage, { projectId: project.id, alias: run.alias }, log, proposal, owner.name, runnerClaim(owner));
    place = owner === "self" ? { kind: "self" } : await placeOnRunner(stage, project, owner, mode, egress);
  }
  return openAccepted(stage, project, run, log, proposal, producer.channels, place, options);
}

/** Where an accepted command goes: the accepting connection, a runner with room (now), or its pool's queue. */
type Place =
  | { kind: "self" }
  | { kind: "runner"; runner: AttachedRunner; pool: PoolFact | null; key: string | null }
  | { kind: "queue"; key: string; admits: Admits; pool: PoolFact | null; why: string };

/**
 * A runner named (or the default) takes the command now when it has room and nothing of its queues waits before it;
 * else the command waits in its queue (`runner:NAME`) for it, or for a runner under its name attached by the same principal.
 */
async function placeOnRunner(stage: Stage, project: ProjectRef, runner: AttachedRunner, mode: SandboxModeName, egress: boolean): Promise<Place> {
  const key = targetKey({ kind: "runner", name: runner.name });
  // A runner without a limit has no queue of its own (it takes whatever it is given, as before pools).
  if (runner.capacity === null && !runner.draining) return { kind: "runner", runner, pool: null, key: null };
  const waiting = await queuedFor(stage, project, runner);
  if (stage.claims.room(runner) > 0 && !waiting) return { kind: "runner", runner, pool: null, key };
  const why = runner.draining ? `runner "${runner.name}" is draining` : `runner "${runner.name}" runs ${runner.capacity} at once`;
  return { kind: "queue", key, admits: runnerAdmits(runner, mode, egress), pool: null, why };
}

/** Whether a command waits in one of the queues the runner serves (a new one goes behind it). */
async function queuedFor(stage: Stage, project: ProjectRef, runner: AttachedRunner): Promise<boolean> {
  return (await stage.deps.repos.queue.queueKeys(project.id)).some((key) => serves(stage.deps.config, runner, key));
}

/**
 * A pool's command goes to a runner of the pool attached here that it admits and that has room, when nothing waits in
 * the pool's queue before it; else into the queue, for any server's runner of the pool to take.
 */
async function placeInPool(stage: Stage, project: ProjectRef, target: PoolTarget, proposal: Producer, mode: SandboxModeName, egress: boolean): Promise<Place> {
  const { config } = stage.deps;
  // The pool as the person was shown it; accepted for a pool the proposal did not name, as it is now (recorded with the decision).
  const fact = proposal.pool ?? poolFact(config, project, target, await poolMembers(stage, project, target));
  if (!fact.modes.includes(mode) && fact.attached > 0) refusePoolMode(fact, mode);
  const admits = poolAdmits(fact, mode, egress);
  const key = targetKey(target);
  const waiting = (await stage.deps.repos.queue.queueKeys(project.id)).includes(key);
  const members = stage.runners.list(project.id).filter((r) => !r.embedded && inTarget(config, r, target) && admitted(r, admits));
  const free = members.filter((r) => stage.claims.room(r) > 0 && !stage.claims.resting(r)).sort((a, b) => stage.claims.load(a) - stage.claims.load(b));
  if (!waiting && free[0]) return { kind: "runner", runner: free[0], pool: proposal.pool ? null : fact, key };
  const resting = members.filter((r) => stage.claims.resting(r)).length;
  const why =
    fact.attached === 0
      ? `no runner of pool ${fact.name} was attached`
      : `every runner of pool ${fact.name} here is busy${resting > 0 ? ` or resting after starts that failed (${resting})` : ""}`;
  return { kind: "queue", key, admits, pool: proposal.pool ? null : fact, why };
}

/** NO_RUNNER: the pool's runners do not all give the mode the command was proposed in (it would run with less on some). */
function refusePoolMode(fact: PoolFact, mode: SandboxModeName): never {
  throw new SpoolError(
    "NO_RUNNER",
    `Not every runner of pool ${fact.name} runs commands in ${mode} (they all give: ${fact.modes.join(", ") || "no mode"}); accept it on a runner that does, or propose it again in a mode they give`,
    { pool: fact.name, sandbox: mode, modes: fact.modes },
  );
}

/**
 * The runners of a pool now, on every server sharing the database: attached here (the embedded one is in no pool)
 * and to the other living servers, as their rows say.
 */
export async function poolMembers(stage: Stage, project: ProjectRef, target: PoolTarget): Promise<RunnerFacts[]> {
  const { config } = stage.deps;
  const here = stage.runners.list(project.id).filter((r) => !r.embedded && inTarget(config, r, target));
  const elsewhere = stage.others ? await stage.others.runnersElsewhere(project.id) : [];
  const serverId = stage.others?.serverId ?? stage.deps.bus.serverId;
  return [...here.map((r) => ({ ...r, serverId })), ...elsewhere.filter((r) => inTarget(config, r, target) && !here.some((h) => h.name === r.name))];
}

/**
 * Opens the accepted command: its log entry 202 → 200 and its channels at 102 (owned by its runner, which is sent it,
 * or by the accepting connection) or, for the queue, at 100 with its row in the queue, in the same transaction.
 */
async function openAccepted(
  stage: Stage,
  project: ProjectRef,
  run: RunRow,
  log: EntryRow,
  proposal: Producer,
  channelNames: Record<number, string>,
  place: Place,
  options: AcceptOptions,
): Promise<AcceptResult> {
  const { deps } = stage;
  const tool = proposal.tool;
  const selfToken = place.kind === "self" ? newResumeToken() : undefined;
  const runnerName = place.kind === "self" ? "self" : place.kind === "runner" ? place.runner.name : null;
  const { resolvedBy, resolver } = options;
  const plan = Object.entries(channelNames).map(([n, name]) => ({
    channel: Number(n),
    path: channelPath(tool, log.turn, proposal.slug, Number(n)),
    attributes: { command: proposal.command, channel: Number(n), name, log: log.path },
  }));
  // Several servers on the database: the server whose runner took it (this one), in place of the one recorded at proposal.
  const here =
    stage.others?.shared && place.kind === "runner" ? { id: stage.others.serverId, label: await stage.others.serverLabel(stage.others.serverId) } : null;
  const now = Date.now();
  const decision = {
    decision: "accept",
    ...(runnerName ? { runner: runnerName } : {}),
    ...(proposal.runnerServer || here ? { runnerServer: here } : {}),
    ...(place.kind === "self" ? { ownerKey: tokenKey(selfToken!) } : place.kind === "runner" ? { ownerKey: place.runner.tokenKey } : {}),
    // A pool the accept named (the proposal named none): recorded as it was when accepted.
    ...(place.kind !== "self" && place.pool ? { pool: place.pool } : {}),
    ...(place.kind === "queue" ? { queue: place.key } : place.kind === "runner" && place.key ? { queue: place.key, takenAt: now } : {}),
    resolvedBy,
    acceptedAt: now,
    ...(options.reason ? { reason: options.reason } : {}),
  };
  const queue = place.kind === "queue" ? { projectId: project.id, pool: place.key, admits: JSON.stringify(place.admits), queuedAt: now } : undefined;
  if (place.kind === "runner") place.runner.reserved++;
  let opened: Awaited<ReturnType<typeof deps.repos.producers.openChannels>>;
  try {
    opened = await deps.repos.producers.openChannels(
      log,
      { from: ENTRY.proposed, to: ENTRY.done, set: decision },
      plan,
      place.kind === "queue" ? ENTRY.queued : ENTRY.streaming,
      queue,
    );
    if (!opened) throw conflict(`"${log.path}" was resolved by someone else`);
    if (place.kind !== "queue")
      await own(stage, log.id, place.kind === "self" ? options.self! : place.runner.connection, place.kind === "self" ? "self" : "runner");
  } finally {
    if (place.kind === "runner") place.runner.reserved--;
  }
  const { log: accepted, channels: rows } = opened;
  // The rule holds the facts everyone was shown (the pending log entry's) and the runner (or pool) the command went to.
  const ruleRunner = runnerName ?? (place.kind === "queue" ? place.key : "self");
  const subject: RuleSubject = { runId: run.id, facts: producerWire(log, []), runner: ruleRunner };
  const rule = options.always === undefined ? undefined : await storeRule(deps.repos, subject, options.always);
  if (rule)
    stage.effects.ruleCreated(project, run, accepted, {
      id: rule.id,
      setBy: options.always!,
      runner: ruleRunner,
      transport: options.resolver.transport,
    });
  const channels = rows.map((r) => ({ channel: r.channel!, name: channelNames[r.channel!]!, path: r.path, status: r.status }));
  const queued = place.kind === "queue" ? { pool: place.key, position: (await deps.repos.queue.queuePlace(log.id))?.position ?? 1 } : undefined;
  await stage.effects.resolved(project, run, accepted, {
    decision: "accept",
    runner: runnerName,
    resolvedBy,
    resolver,
    reason: options.reason ?? null,
    channels,
    ...(queued ? { queued } : {}),
  });
  if (place.kind === "runner") dispatchTo(stage, project, run, accepted, place.runner, channels);
  if (place.kind === "queue") {
    deps.log.info(`${run.alias} ${log.path}: queued in ${place.key} (${place.why})`, { project: project.name, run: run.alias, path: log.path });
    // Every server's free runners of the pool look (this one's too: one may have room while older commands wait).
    stage.others?.queued(project.id, place.key);
    stage.claims.wakeProject(project.id, place.key);
  }
  return {
    path: log.path,
    status: ENTRY.done,
    runner: runnerName,
    channels,
    ...(queued ? { queued } : {}),
    ...(selfToken ? { resumeToken: selfToken } : {}),
    ...(rule ? { rule: rule.id } : {}),
  };
}

/** Whether a proposal runs in sandbox mode full (as acceptAs takes the recorded mode: none recorded and not read-only is full). */
export function runsFull(stage: Stage, proposal: Pick<Producer, "tool" | "readOnly" | "sandbox">): boolean {
  return !(stage.producers.get(proposal.tool)?.readOnly === true || proposal.readOnly || proposal.sandbox === "workspace-write");
}

/**
 * Refuses (FORBIDDEN, naming the rule) an accept of a command in sandbox mode full by anyone `sandboxFullAcceptors` does not
 * name: a scoped credential never, whoever proposed it. Nothing has changed when it throws.
 */
function requireFullAcceptor(stage: Stage, proposal: Producer, acceptor: PrincipalRef | undefined): void {
  if (!runsFull(stage, proposal)) return;
  const acceptors = stage.deps.config.sandboxFullAcceptors;
  if (acceptor && mayAcceptFull(acceptor, acceptors)) return;
  const { message, data } = fullRefusal(acceptor ?? { name: "nobody", role: "viewer", projects: null }, acceptors);
  throw new SpoolError("FORBIDDEN", message, { ...data, method: "run/resolve", path: proposal.path });
}

/**
 * Sends an accepted (or taken) command to its runner (runner/exec). Not awaited: the accept answers at once. What
 * dispatch could not record (the server stopping under it: its store closed) is said in the log, and the producer is
 * found interrupted at the next start.
 */
export function dispatchTo(
  stage: Stage,
  project: ProjectRef,
  run: RunRow,
  accepted: EntryRow,
  runner: AttachedRunner,
  channels: { channel: number; name: string; path: string }[],
): void {
  const { deps } = stage;
  const params = execParams(deps.config, project, run, accepted, runner, channels, stage.producers.get(producerFromRow(accepted).tool)?.readOnly === true);
  deps.observer?.dispatched(accepted, runner.name);
  dispatch(runner, params, {
    started: (where) => {
      stage.claims.started(runner);
      return start(stage, project, run, accepted, runner.name, where);
    },
    lost: (reason) => {
      // The embedded runner is in no pool and has no queue: nothing to rest from.
      if (!runner.embedded) {
        const ms = stage.claims.failedStart(runner);
        deps.log.warn(
          `runner "${runner.name}" did not start ${accepted.path} (${reason}): it takes no queued command for ${ms / 1000} s (${runner.failedStarts} failed in a row)`,
        );
      }
      return lose(stage, accepted.id, reason);
    },
  }).catch((error: unknown) => deps.log.error(`could not record how producer ${accepted.path} was dispatched to runner "${runner.name}"`, error));
}

/**
 * The pool an accept sends the command to: the proposal's (an accept naming another runner or pool is CONFLICT: the
 * person saw that one), or the one the accept names for a proposal that named none; null: a runner.
 */
function acceptPool(stage: Stage, path: string, proposal: Producer, named: AcceptOptions["runner"]): PoolTarget | null {
  const recorded = proposal.pool ? recordedTarget(proposal) : null;
  const asked = named !== undefined && typeof named !== "string" ? poolTarget(stage.deps.config, named) : null;
  if (recorded && named !== undefined && (asked === null || targetKey(asked) !== targetKey(recorded))) {
    throw conflict(
      `"${path}" was proposed for ${keyWords(targetKey(recorded))}, and that is what everyone was shown; accept it without a runner, or reject it and propose it again`,
      { pool: targetKey(recorded), requested: typeof named === "string" ? named : targetKey(asked!) },
    );
  }
  if (asked && proposal.runner !== null) {
    throw conflict(
      `"${path}" was proposed for runner "${proposal.runner}", and that is the runner everyone was shown; accept it without a runner (or with "${proposal.runner}"), or reject it and propose it again for the pool`,
      { runner: proposal.runner, requested: targetKey(asked) },
    );
  }
  return recorded ?? asked;
}

/** The pool a proposal recorded, as a target: a configured pool by its name, else its labels. */
function recordedTarget(proposal: Producer): PoolTarget {
  const pool = proposal.pool!;
  return pool.configured ? { kind: "pool", name: pool.name } : { kind: "labels", labels: pool.labels };
}

/**
 * The runner an accept uses: the one it names, else the one the proposal named. Naming another runner than
 * the proposal did is a CONFLICT: the person deciding saw the proposed one.
 */
function acceptRunner(path: string, proposed: string | null, named: string | undefined): string | undefined {
  if (proposed === null || named === undefined || named === proposed) return named ?? proposed ?? undefined;
  throw conflict(
    `"${path}" was proposed for runner "${proposed}", and that is the runner everyone was shown; accept it without a runner (or with "${proposed}"), or reject it and propose it again for "${named}"`,
    { runner: proposed, requested: named },
  );
}

/** The run and log of a proposal `operation` (accept or reject) may decide, as the table says. */
async function requirePending(
  stage: Stage,
  project: ProjectRef,
  alias: string,
  path: string,
  operation: "accept" | "reject",
): Promise<{ run: RunRow; log: EntryRow }> {
  const { run, log } = await requireLog(stage.deps.repos, project, alias, path).catch((error: unknown) => {
    if (error instanceof SpoolError && error.errorName === "NOT_FOUND" && error.details.path) throw notFound(`Proposal "${path}"`, { run: alias, path });
    throw error;
  });
  const { state } = await producerState(stage.deps.repos, log);
  follow(state, operation, "owner", () => notPending(path, log.status));
  return { run, log };
}

/** reject: the log entry 202 → 403. `by` names who decided (a client, or run/abort); `resolver` says which (default: a client named `by`). */
export async function reject(
  stage: Stage,
  project: ProjectRef,
  target: ProducerTarget,
  options: { by: string; resolver?: ResolverOut; reason?: string | undefined },
): Promise<EntryRow> {
  const { run, log } = await requirePending(stage, project, target.run, target.path, "reject");
  const reason = options.reason ?? "rejected";
  const rejected = await stage.deps.repos.producers.moveStatus(log, ENTRY.proposed, ENTRY.rejected, { decision: "reject", reason, resolvedBy: options.by });
  if (!rejected) throw conflict(`"${target.path}" was resolved by someone else`);
  await stage.effects.resolved(project, run, rejected, {
    decision: "reject",
    runner: null,
    resolvedBy: options.by,
    resolver: options.resolver ?? { kind: "connection", connectionId: null, client: options.by, rule: null },
    reason,
    channels: [],
  });
  return rejected;
}

/** A proposal a revocation withdrew: where it was. */
export interface Withdrawn {
  project: string;
  run: string;
  path: string;
}

/**
 * The proposals `principal` made that still wait for a decision, in every project, each rejected (the table's
 * `reject`, as a person's would be): its credential was revoked, and nobody may accept a command whose proposer no
 * longer exists. One decided meanwhile (here or on another server sharing the database) stays as it was; one that
 * cannot be rejected is said on the log and left waiting (the revocation stands: the others are still withdrawn).
 */
export async function withdrawProposalsOf(
  stage: Stage,
  principal: string,
  options: { by: string; resolver: ResolverOut; reason: string },
): Promise<Withdrawn[]> {
  // Before the waiting ones are read: one of its proposals stored after that read withdraws itself (propose.ts).
  stage.revocations.add(principal);
  const withdrawn: Withdrawn[] = [];
  for (const p of await stage.deps.repos.entries.listPendingEverywhere(ENTRY.proposed, principal)) {
    const project = { id: p.project_id, name: p.project, root: p.root };
    try {
      await reject(stage, project, { run: p.run, path: p.path }, options);
      withdrawn.push({ project: p.project, run: p.run, path: p.path });
    } catch (error) {
      if (error instanceof SpoolError && (error.errorName === "CONFLICT" || error.errorName === "NOT_FOUND")) continue;
      stage.deps.log.error(`revocation: could not withdraw ${p.path} of "${principal}"`, { project: p.project, run: p.run, path: p.path, error });
    }
  }
  return withdrawn;
}

/** start: the owner runs the producer; where (pid, container, host) is recorded on the log entry. */
export async function start(stage: Stage, project: ProjectRef, run: RunRow, log: EntryRow, runner: string, process: Record<string, unknown>): Promise<boolean> {
  // Cancelled (or lost) before the runner's reply came back: nothing is running to record.
  const channels = await stage.deps.repos.entries.listChannels(log.id);
  const state = stateOf(
    channels.length > 0 ? ENTRY.done : log.status,
    channels.map((c) => c.status),
  );
  const cell = follow(state, "start", "owner", (error) => new SpoolError(error, `"${log.path}" cannot start (${state})`));
  if (cell.notices.length === 0) return false;
  await stage.effects.started(project, run, log, runner, process);
  return true;
}
