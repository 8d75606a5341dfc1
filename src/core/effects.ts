import type { z } from "zod";
import type { FinishedNotice, ProposalNotice, ResolvedNotice } from "../protocol/common.js";
import type { TransportKind } from "../protocol/roles.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import { wireAttributes } from "../store/entries.js";
import { type Producer, producerFromRow } from "../store/producer-row.js";
import type { EntryRow, RunRow } from "../store/schema.js";
import { producerWire } from "../store/views.js";
import type { CoreDeps } from "./deps.js";
import type { Outcome } from "./producers/outcome.js";
import { ENTRY } from "./status.js";
import type { WatcherHub } from "./streams/watchers.js";

/*
 * What a change of a producer's state does besides the row it writes: the notifications to the project
 * (on every server sharing the database), the hooks plugins listen to, and the watchers it ends. Each
 * transition calls one of these once its store write has succeeded, so each effect happens exactly once.
 */

/** The loop and tool call of the model that made a proposal (null for a client's proposal). */
function modelCall(producer: Producer): { loop: number | null; toolCallId: string | null } {
  return { loop: producer.loop, toolCallId: producer.toolCallId };
}

/** `run/proposal` for a proposal's log entry (also re-sent to connections that initialize while it waits); `deadlineMs`: decisionTimeoutMs. */
export function proposalNotice(runAlias: string, row: EntryRow, deadlineMs: number): z.output<typeof ProposalNotice> {
  const producer = producerFromRow(row);
  return {
    run: runAlias,
    path: row.path,
    tool: producer.tool,
    command: producer.command,
    attributes: wireAttributes(row),
    producer: producerWire(row, []),
    turn: row.turn,
    ...modelCall(producer),
    createdAt: row.created_at,
    expiresAt: deadlineMs > 0 ? row.created_at + deadlineMs : null,
  };
}

/** An "always allow" rule stored with an accept: its id, who set it (words), its runner, the setter's verified transport. */
export interface RuleCreated {
  id: number;
  setBy: string;
  runner: string;
  transport?: TransportKind | undefined;
}

export type ResolvedDetails = Omit<z.input<typeof ResolvedNotice>, "run" | "path" | "status" | "loop" | "toolCallId">;

/** What a proposal's life tells beyond its clients: the audit trail, notifications, deadlines (activity/index.ts). */
export interface ProducerActivity {
  proposed(project: ProjectRef, run: RunRow, log: EntryRow, proposedBy: string, transport: TransportKind | null): void;
  waiting(project: ProjectRef, run: RunRow, log: EntryRow): void;
  resolved(project: ProjectRef, run: RunRow, log: EntryRow, details: ResolvedDetails): void;
  ruleCreated(project: ProjectRef, run: RunRow, log: EntryRow, rule: RuleCreated): void;
  finished(project: ProjectRef, run: RunRow, log: EntryRow, status: number, outcome: Outcome): void;
}

export class Effects {
  /** The audit trail, notifications and deadlines (set once the core is built; none in a bare lifecycle). */
  activity: ProducerActivity | null = null;

  constructor(
    private readonly deps: CoreDeps,
    private readonly watchers: WatcherHub,
    /** Fair shares: a rejected or withdrawn proposal is taken from its proposer's hour (shares.ts). */
    private readonly shares: { rejected(log: EntryRow): Promise<void> } | null = null,
  ) {}

  /** `entry:status` for one entry whose status changed (`previous` null: it is new). */
  hookStatus(project: ProjectRef, run: RunRow, entry: EntryRow, previous: number | null): Promise<void> {
    return this.deps.emit("entry:status", { projectId: project.id, run, entry, previous });
  }

  /** A proposal was stored (before a rule may accept it): the audit trail records it. */
  proposed(project: ProjectRef, run: RunRow, log: EntryRow, proposedBy: string, transport: TransportKind | null): void {
    this.activity?.proposed(project, run, log, proposedBy, transport);
  }

  /** A proposal waits for a person: `run/proposal` to every connection of the project, receivers told, its deadline set. */
  announceProposal(project: ProjectRef, run: RunRow, log: EntryRow): void {
    this.deps.notifyProject(project.id, "run/proposal", proposalNotice(run.alias, log, this.deps.config.decisionTimeoutMs));
    this.activity?.waiting(project, run, log);
  }

  /** An "always allow" rule was stored with an accept: the audit trail records it (its id, its facts, who set it). */
  ruleCreated(project: ProjectRef, run: RunRow, log: EntryRow, rule: RuleCreated): void {
    this.activity?.ruleCreated(project, run, log, rule);
  }

  /** A proposal was accepted or rejected: `run/resolved`, then its status hook. */
  async resolved(project: ProjectRef, run: RunRow, log: EntryRow, details: ResolvedDetails): Promise<void> {
    const notice: z.input<typeof ResolvedNotice> = { run: run.alias, path: log.path, status: log.status, ...details, ...modelCall(producerFromRow(log)) };
    this.deps.notifyProject(project.id, "run/resolved", notice);
    this.deps.observer?.resolved(project, run, log, details);
    this.activity?.resolved(project, run, log, details);
    // Counted after the write: a failure to count is the log's, never the decision's.
    if (details.decision === "reject")
      await this.shares?.rejected(log).catch((error: unknown) => this.deps.log.warn(`fair shares: could not count ${log.path}'s rejection`, { error }));
    await this.hookStatus(project, run, log, ENTRY.proposed);
  }

  /** The owner runs it: where (pid, container, host) is stored on the log entry, announced and hooked. */
  async started(project: ProjectRef, run: RunRow, log: EntryRow, runner: string, process: Record<string, unknown>): Promise<void> {
    this.deps.observer?.started(log, runner);
    await this.deps.repos.entries.setAttribute(log.id, "process", process);
    this.deps.notifyProject(project.id, "stream/started", { run: run.alias, path: log.path, runner, process });
    await this.deps.emit("producer:started", { projectId: project.id, run, log, runner, process });
  }

  /** Its channels ended at `status` (from `previous`: streaming, or queued): their watchers end, `stream/finished`, one status hook per channel. */
  async finished(
    project: ProjectRef,
    run: RunRow,
    log: EntryRow,
    channels: EntryRow[],
    status: number,
    outcome: Outcome,
    previous: number = ENTRY.streaming,
  ): Promise<void> {
    const exit = outcome.kind === "completed" ? { exit_code: outcome.exit_code ?? null } : {};
    for (const ch of channels) this.watchers.end(ch.id, { status: ch.status, ...exit });
    const notice: z.input<typeof FinishedNotice> = { run: run.alias, path: log.path, status, outcome: outcome.kind, ...exit };
    if (outcome.kind === "completed" && outcome.signal) notice.signal = outcome.signal;
    if ("reason" in outcome && outcome.reason) notice.reason = outcome.reason;
    this.deps.notifyProject(project.id, "stream/finished", notice);
    this.deps.observer?.finished(log, channels, status, outcome);
    this.activity?.finished(project, run, log, status, outcome);
    for (const ch of channels) await this.hookStatus(project, run, ch, previous);
  }

  /** A cancel changed it: the owner, wherever it is connected, is told to kill the work. */
  cancelled(project: ProjectRef, run: RunRow, log: EntryRow, reason: string): void {
    this.deps.notifyProject(project.id, "stream/cancelled", { run: run.alias, path: log.path, reason });
  }
}
