import { hash } from "node:crypto";
import type { TransportKind } from "../../protocol/roles.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { producerFromRow } from "../../store/producer-row.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { ProducerActivity, ResolvedDetails, RuleCreated } from "../effects.js";
import type { Outcome } from "../producers/outcome.js";
import { DEADLINE } from "../resolvers.js";
import { type Audit, whoOf } from "./audit.js";
import type { Deadlines } from "./deadlines.js";
import type { Notifications } from "./notify/service.js";

/*
 * What a proposal's life tells beyond its own clients (effects.ts calls these after each store write): the
 * audit trail, the notifications' outbox, and the deadlines. Each call only starts its work (an insert, a timer):
 * nothing here is waited for on the lifecycle's path.
 */
export class Activity implements ProducerActivity {
  constructor(
    private readonly audit: Audit,
    private readonly notifications: Notifications,
    private readonly deadlines: Deadlines,
  ) {}

  /** A proposal was stored (a rule may accept it at once). */
  proposed(project: ProjectRef, run: RunRow, log: EntryRow, proposedBy: string, transport: TransportKind | null): void {
    const { principal, client } = whoOf(proposedBy);
    const command = (JSON.parse(log.attributes) as { command?: unknown }).command;
    // The trail keeps what identifies the command, not the command (up to 64 KiB, whole in the entry): its digest and head.
    const detail = typeof command === "string" ? commandSummary(command) : {};
    void this.audit.record({ action: "proposal", principal, transport, client, project: project.name, run: run.alias, path: log.path, detail });
  }

  /** It waits for a person: receivers are told, and its deadline starts. */
  waiting(project: ProjectRef, run: RunRow, log: EntryRow): void {
    this.notifications.enqueue(project, run.alias, log, { event: "proposal" });
    this.deadlines.watch(project, run.alias, log.id, log.path, Number(log.created_at));
  }

  /** It was decided, by someone, a rule, run/abort or the deadline, or withdrawn by a revocation of its proposer. */
  resolved(project: ProjectRef, run: RunRow, log: EntryRow, details: ResolvedDetails): void {
    this.deadlines.decided(log.id);
    const { resolver } = details;
    const expired = resolver.kind === "deadline";
    // A rule's accept names the rule as who and its setter as a field of its own (resolvedBy is words for people).
    const byRule = resolver.kind === "rule" && typeof resolver.rule === "number";
    const setBy = byRule && resolver.client ? whoOf(resolver.client) : null;
    const { principal, client } = expired
      ? { principal: DEADLINE, client: null }
      : byRule
        ? { principal: `rule #${resolver.rule}`, client: null }
        : whoOf(details.resolvedBy);
    void this.audit.record({
      action: expired ? "expired" : "decision",
      principal,
      // A withdrawal by a revocation is the revoking connection's act: its transport, as a client's decision has its own.
      transport: resolver.kind === "connection" || resolver.kind === "revoked" ? (resolver.transport ?? null) : null,
      client: byRule ? null : (client ?? resolver.client ?? null),
      project: project.name,
      run: run.alias,
      path: log.path,
      detail: {
        decision: details.decision,
        reason: details.reason ?? null,
        by: details.resolvedBy,
        resolver: resolver.kind,
        how: resolver.how ?? HOW_OF_KIND[resolver.kind],
        ...(byRule ? { rule: resolver.rule!, setBy: setBy!.principal, setVia: setBy!.client } : {}),
      },
    });
    this.notifications.enqueue(project, run.alias, log, {
      event: expired ? "expired" : "decided",
      outcome: details.decision,
      by: details.resolvedBy,
      reason: details.reason ?? null,
    });
  }

  /** An "always allow" rule was stored: its id, the exact facts it covers (the command as its digest and head), who set it. */
  ruleCreated(project: ProjectRef, run: RunRow, log: EntryRow, rule: RuleCreated): void {
    const { principal, client } = whoOf(rule.setBy);
    const a = JSON.parse(log.attributes) as { tool?: string; command?: string; cwd?: string; env?: Record<string, string> };
    void this.audit.record({
      action: "rule/create",
      principal,
      transport: rule.transport ?? null,
      client,
      project: project.name,
      run: run.alias,
      path: log.path,
      detail: {
        rule: rule.id,
        setBy: principal,
        tool: a.tool ?? null,
        ...commandSummary(a.command ?? ""),
        cwd: a.cwd ?? null,
        envNames: Object.keys(a.env ?? {}),
        runner: rule.runner,
      },
    });
  }

  /** Its command ended (a cancel is an act of someone's, for the trail). */
  finished(project: ProjectRef, run: RunRow, log: EntryRow, status: number, outcome: Outcome): void {
    // Network mode allowlist: what the command reached and was refused, under the principal that accepted it.
    if (outcome.kind !== "cancelled" && outcome.egress) {
      const { principal, client } = whoOf(producerFromRow(log).resolvedBy ?? "server");
      void this.audit.record({ action: "egress", principal, client, project: project.name, run: run.alias, path: log.path, detail: { ...outcome.egress } });
    }
    if (outcome.kind === "cancelled") {
      const { principal, client } = whoOf(outcome.by ?? "server");
      void this.audit.record({
        action: "cancel",
        principal,
        transport: outcome.via ?? null,
        client,
        project: project.name,
        run: run.alias,
        path: log.path,
        detail: { reason: outcome.reason ?? null },
      });
    }
    this.notifications.enqueue(project, run.alias, log, {
      event: "finished",
      status,
      outcome: outcome.kind === "completed" && outcome.signal ? `killed by ${outcome.signal}` : outcome.kind,
      exitCode: outcome.kind === "completed" ? (outcome.exit_code ?? null) : null,
      reason: "reason" in outcome ? (outcome.reason ?? null) : null,
    });
  }
}

/** How a decision was made when its resolver does not say (rows of resolvers from before `how`). */
const HOW_OF_KIND = { connection: "key", rule: "rule", abort: "abort", deadline: "deadline", revoked: "revoked" } as const;

/** Bytes of a command the audit trail keeps (with its SHA-256 and its size, which identify the rest). */
export const COMMAND_HEAD_BYTES = 256;

/** A command as the trail keeps it: its SHA-256, its size in bytes, and its first COMMAND_HEAD_BYTES (whole characters). */
export function commandSummary(command: string): { commandDigest: string; commandBytes: number; commandHead: string } {
  const bytes = Buffer.from(command, "utf8");
  const head =
    bytes.length <= COMMAND_HEAD_BYTES
      ? command
      : bytes
          .subarray(0, COMMAND_HEAD_BYTES)
          .toString("utf8")
          .replace(/\uFFFD$/, "");
  return { commandDigest: `sha256:${hash("sha256", bytes, "hex")}`, commandBytes: bytes.length, commandHead: head };
}
