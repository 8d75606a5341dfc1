import type { z } from "zod";
import type { ProposalNotice } from "../protocol/common.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import { channelFromRow } from "../store/producer-row.js";
import type { EntryRow } from "../store/schema.js";
import type { CoreDeps } from "./deps.js";
import { proposalNotice } from "./effects.js";
import { ENTRY } from "./status.js";

/** A proposal waiting for a decision, as `run/proposal` announces it, with its log entry's id (the page cursor). */
export interface PendingProposal {
  id: number;
  notice: z.output<typeof ProposalNotice>;
}

/** What a model's tool call became: its producer's log path, its status, and its exit code once it finished (all null: no proposal yet). */
export interface ToolCallProducer {
  path: string | null;
  status: number | null;
  exitCode: number | null;
}

/** Proposals and the producers they became, as the handlers read them (their changes of state are the lifecycle's). */
export class Proposals {
  constructor(private readonly deps: CoreDeps) {}

  /** A page of the project's proposals that wait for a decision, oldest first, after log entry `afterId` (of one run, given `runId`). */
  async pending(project: ProjectRef, page: { afterId: number; limit: number; runId?: number | undefined }): Promise<PendingProposal[]> {
    const rows = await this.deps.repos.entries.listProjectLogsAt(project.id, ENTRY.proposed, page);
    return rows.map((row) => ({ id: row.id, notice: proposalNotice(row.alias, row, this.deps.config.decisionTimeoutMs) }));
  }

  /** What run/abort stops in a run: its proposals still pending, and the producers accepted (running or finished: cancel tells). */
  undecidedOrAccepted(runId: number): Promise<EntryRow[]> {
    return this.deps.repos.entries.listLogsIn(runId, [ENTRY.proposed, ENTRY.done]);
  }

  /** The producer the model's tool call `callId` proposed in the run: pending, decided, running or finished. */
  async ofToolCall(runId: number, callId: string): Promise<ToolCallProducer> {
    const log = await this.deps.repos.entries.findLogByAttribute(runId, "toolCallId", callId);
    if (!log) return { path: null, status: null, exitCode: null };
    if (log.status !== ENTRY.done) return { path: log.path, status: log.status, exitCode: null };
    const channels = await this.deps.repos.entries.listChannels(log.id);
    const status = channels.some((c) => c.status === ENTRY.streaming) ? ENTRY.streaming : (channels[0]?.status ?? log.status);
    return { path: log.path, status, exitCode: channels[0] ? channelFromRow(channels[0]).exitCode : null };
  }
}
