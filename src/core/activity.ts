import type { ProjectRef } from "../rpc/connection-context.js";
import { producerFromRow } from "../store/producer-row.js";
import type { EntryRow, RunRow } from "../store/schema.js";
import { type Audit, whoOf } from "./audit.js";
import type { Deadlines } from "./deadlines.js";
import type { ProducerActivity, ResolvedDetails } from "./effects.js";
import type { Notifications } from "./notify/service.js";
import { DEADLINE } from "./resolvers.js";
import type { Outcome } from "./summary.js";

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
  proposed(project: ProjectRef, run: RunRow, log: EntryRow, proposedBy: string): void {
    const { principal, client } = whoOf(proposedBy);
    const command = (JSON.parse(log.attributes) as { command?: unknown }).command;
    void this.audit.record({ action: "proposal", principal, client, project: project.name, run: run.alias, path: log.path, detail: { command } });
  }

  /** It waits for a person: receivers are told, and its deadline starts. */
  waiting(project: ProjectRef, run: RunRow, log: EntryRow): void {
    this.notifications.enqueue(project, run.alias, log, { event: "proposal" });
    this.deadlines.watch(project, run.alias, log.id, log.path, Number(log.created_at));
  }

  /** It was decided, by someone, a rule, run/abort or the deadline. */
  resolved(project: ProjectRef, run: RunRow, log: EntryRow, details: ResolvedDetails): void {
    this.deadlines.decided(log.id);
    const expired = details.resolver.kind === "deadline";
    const { principal, client } = expired ? { principal: DEADLINE, client: null } : whoOf(details.resolvedBy);
    void this.audit.record({
      action: expired ? "expired" : "decision",
      principal,
      client: client ?? details.resolver.client ?? null,
      project: project.name,
      run: run.alias,
      path: log.path,
      detail: { decision: details.decision, reason: details.reason ?? null, by: details.resolvedBy, resolver: details.resolver.kind },
    });
    this.notifications.enqueue(project, run.alias, log, {
      event: expired ? "expired" : "decided",
      outcome: details.decision,
      by: details.resolvedBy,
      reason: details.reason ?? null,
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
        client,
        project: project.name,
        run: run.alias,
        path: log.path,
        detail: { reason: outcome.reason },
      });
    }
    this.notifications.enqueue(project, run.alias, log, {
      event: "finished",
      status,
      outcome: outcome.kind === "completed" && outcome.signal ? `killed by ${outcome.signal}` : outcome.kind,
      exitCode: outcome.kind === "completed" ? (outcome.exit_code ?? null) : null,
      reason: "reason" in outcome ? outcome.reason : null,
    });
  }
}
