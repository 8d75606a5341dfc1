import { fullRefusal, mayAcceptFull } from "../../protocol/full-acceptors.js";
import type { PrincipalRef } from "../../protocol/roles.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import { conflict, notFound, SpoolError } from "../../rpc/errors.js";
import { type Producer as ProducerRow, producerFromRow } from "../../store/producer-row.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import { type RuleSubject, storeRule } from "../allow-rules.js";
import type { AcceptResult, ProducerTarget, ResolverOut } from "../deps.js";
import { acceptingServer, dispatch, execParams } from "../dispatch.js";
import { notPending } from "../refusals.js";
import { connectionResolver, describeCaller } from "../resolvers.js";
import { runnerClaim } from "../runner-registry.js";
import { channelPath } from "../slug.js";
import { ENTRY } from "../status.js";
import { newResumeToken, tokenKey } from "../tokens.js";
import { producerWire } from "../views.js";
import { lose } from "./finish.js";
import { own } from "./ownership.js";
import { requireClaimHolds, requireFactsHold } from "./runner-moved.js";
import { follow, producerState, requireLog, type Stage } from "./stage.js";
import { stateOf } from "./transitions.js";

/*
 * The decision on a proposal: accept (its channels open, then dispatch.ts sends it to its runner, whose
 * reply starts it) or reject.
 */

/** How an accept is asked for: by a client (`self` is its connection), a rule (`self` null), or another server (`forwarded`). */
export interface AcceptOptions {
  /**
   * Who accepts: the client's principal, the principal that set the rule, or the one another server passed on. A command in
   * sandbox mode full is accepted only by one `sandboxFullAcceptors` names (undefined: nobody, so never full).
   */
  acceptor?: PrincipalRef | undefined;
  runner?: string | undefined;
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
  runner?: string | undefined;
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
  const { deps, runners } = stage;
  const { run, log } = await requirePending(stage, project, target.run, target.path, "accept");
  const proposal = producerFromRow(log);
  // At the pending stage the log's `runner` is the proposed one (the decision overwrites it with the one that took it).
  // Named by neither: the runner recorded (and shown) when it was proposed, even if the project's default changed since.
  const requested = acceptRunner(target.path, proposal.runner, options.runner) ?? proposal.defaultRunner ?? undefined;
  // A runner attached to another server sharing the database: that server accepts it and dispatches it.
  // Only on the facts that hold: a runner's server that stopped is replaced, announced again, and decided again.
  await requireFactsHold(stage, proposal, options.facts);
  // Before it is passed on or anything is opened: a command without a sandbox is the machine's, not a project's.
  requireFullAcceptor(stage, proposal, options.acceptor);
  const recorded = { name: proposal.runner ?? proposal.defaultRunner, own: proposal.runnerClaim?.own === true, server: proposal.runnerServer };
  const server = options.forwarded ? null : await acceptingServer(stage.others, runners, project, requested, recorded);
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
  if (requested === "self" && !options.self) throw conflict('a rule cannot accept with runner "self"');
  const owner = await runners.select(project, requested, { readOnly, mode, egress: mode === "workspace-write" && proposal.egress !== null });
  // The runner shown, with the claim shown: another principal's runner under its name is not it.
  if (owner !== "self") await requireClaimHolds(stage, run.alias, log, proposal, owner.name, runnerClaim(owner));
  const selfToken = owner === "self" ? newResumeToken() : undefined;
  const runnerName = owner === "self" ? "self" : owner.name;
  const { resolvedBy, resolver } = options;
  const plan = Object.entries(producer.channels).map(([n, name]) => ({
    channel: Number(n),
    path: channelPath(tool, log.turn, proposal.slug, Number(n)),
    attributes: { command: proposal.command, channel: Number(n), name, log: log.path },
  }));
  // Several servers on the database: the server whose runner took it (this one), in place of the one recorded at proposal.
  const here = stage.others?.shared && owner !== "self" ? { id: stage.others.serverId, label: await stage.others.serverLabel(stage.others.serverId) } : null;
  const decision = {
    decision: "accept",
    runner: runnerName,
    ...(proposal.runnerServer || here ? { runnerServer: here } : {}),
    ownerKey: owner === "self" ? tokenKey(selfToken!) : owner.tokenKey,
    resolvedBy,
    acceptedAt: Date.now(),
    ...(options.reason ? { reason: options.reason } : {}),
  };
  const opened = await deps.repos.producers.openChannels(log, { from: ENTRY.proposed, to: ENTRY.done, set: decision }, plan, ENTRY.streaming);
  if (!opened) throw conflict(`"${target.path}" was resolved by someone else`);
  const { log: accepted, channels: rows } = opened;
  await own(stage, log.id, owner === "self" ? options.self! : owner.connection, owner === "self" ? "self" : "runner");
  // The rule holds the facts everyone was shown (the pending log entry's) and the runner the command went to.
  const subject: RuleSubject = { runId: run.id, facts: producerWire(log, []), runner: runnerName };
  const rule = options.always === undefined ? undefined : await storeRule(deps.repos, subject, options.always);
  if (rule)
    stage.effects.ruleCreated(project, run, accepted, {
      id: rule.id,
      setBy: options.always!,
      runner: runnerName,
      transport: options.resolver.transport,
    });
  const channels = rows.map((r) => ({ channel: r.channel!, name: producer.channels[r.channel!]!, path: r.path, status: r.status }));
  await stage.effects.resolved(project, run, accepted, {
    decision: "accept",
    runner: runnerName,
    resolvedBy,
    resolver,
    reason: options.reason ?? null,
    channels,
  });
  if (owner !== "self") {
    const params = execParams(deps.config, project, run, accepted, owner, channels, stage.producers.get(tool)?.readOnly === true);
    deps.observer?.dispatched(accepted, owner.name);
    // Not awaited: the accept answers at once. What dispatch could not record (the server stopping under it: its
    // store closed) is said in the log, and the producer is found interrupted at the next start.
    dispatch(owner, params, {
      started: (where) => start(stage, project, run, accepted, owner.name, where),
      lost: (reason) => lose(stage, log.id, reason),
    }).catch((error: unknown) => deps.log.error(`could not record how producer ${accepted.path} was dispatched to runner "${owner.name}"`, error));
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

/** Whether a proposal runs in sandbox mode full (as acceptAs takes the recorded mode: none recorded and not read-only is full). */
export function runsFull(stage: Stage, proposal: Pick<ProducerRow, "tool" | "readOnly" | "sandbox">): boolean {
  return !(stage.producers.get(proposal.tool)?.readOnly === true || proposal.readOnly || proposal.sandbox === "workspace-write");
}

/**
 * Refuses (FORBIDDEN, naming the rule) an accept of a command in sandbox mode full by anyone `sandboxFullAcceptors` does not
 * name: a scoped credential never, whoever proposed it. Nothing has changed when it throws.
 */
function requireFullAcceptor(stage: Stage, proposal: ProducerRow, acceptor: PrincipalRef | undefined): void {
  if (!runsFull(stage, proposal)) return;
  const acceptors = stage.deps.config.sandboxFullAcceptors;
  if (acceptor && mayAcceptFull(acceptor, acceptors)) return;
  const { message, data } = fullRefusal(acceptor ?? { name: "nobody", role: "viewer", projects: null }, acceptors);
  throw new SpoolError("FORBIDDEN", message, { ...data, method: "run/resolve", path: proposal.path });
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
