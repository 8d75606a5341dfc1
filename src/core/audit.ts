import type { z } from "zod";
import type { AUDIT_ACTIONS, AuditEvent } from "../protocol/methods/audit.js";
import type { PrincipalRef } from "../protocol/roles.js";
import type { AuditRow } from "../store/schema.js";
import type { ActivityWrites } from "./activity-writes.js";
import type { CoreDeps } from "./deps.js";
import { requireCovered } from "./scope.js";

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** One act for the trail. */
export interface AuditAct {
  action: AuditAction;
  principal: string;
  client?: string | null | undefined;
  project?: string | null | undefined;
  run?: string | null | undefined;
  path?: string | null | undefined;
  detail?: Record<string, unknown>;
}

/** `alice via spool-cli` (describeCaller's words) as the principal and the client; words of another shape are the principal. */
export function whoOf(by: string): { principal: string; client: string | null } {
  const at = by.indexOf(" via ");
  return at < 0 ? { principal: by, client: null } : { principal: by.slice(0, at), client: by.slice(at + 5) };
}

/**
 * The audit trail: every act worth answering for (who, through which client, when, in which project and run),
 * appended to a table nothing updates or deletes (migration 014's triggers), and said on the log with the same
 * fields. Recording never throws: a trail that cannot be written is an error on the log, not a refused decision.
 */
export class Audit {
  constructor(
    private readonly deps: CoreDeps,
    private readonly writes: ActivityWrites,
  ) {}

  /** Records an act of a connection's caller: its principal, and the client it named at initialize. */
  byCaller(
    caller: { principal: { name: string }; clientInfo?: { name: string } | null | undefined },
    act: Omit<AuditAct, "principal" | "client">,
  ): Promise<void> {
    return this.record({ ...act, principal: caller.principal.name, client: caller.clientInfo?.name ?? null });
  }

  async record(act: AuditAct): Promise<void> {
    const at = Date.now();
    const fields = {
      principal: act.principal,
      ...(act.client ? { client: act.client } : {}),
      ...(act.project ? { project: act.project } : {}),
      ...(act.run ? { run: act.run } : {}),
      ...(act.path ? { path: act.path } : {}),
    };
    // Input comes a keystroke at a time: on the log only when asked for (debug); always in the table.
    this.deps.log[act.action === "input" ? "debug" : "info"](`audit: ${act.action}${act.path ? ` ${act.path}` : ""}`, { ...fields, ...act.detail });
    try {
      await this.writes.audit({
        at,
        action: act.action,
        principal: act.principal,
        client: act.client ?? null,
        project: act.project ?? null,
        run: act.run ?? null,
        path: act.path ?? null,
        detail: JSON.stringify(act.detail ?? {}),
      });
    } catch (error) {
      this.deps.log.error(`audit: could not record ${act.action}`, { ...fields, error });
    }
  }

  /** The trail `by` may read: a scoped admin's projects' acts and its own (asking for another project is FORBIDDEN). */
  async list(by: PrincipalRef, filter: { since?: number | undefined; project?: string | undefined; after?: number | undefined; limit?: number | undefined }) {
    if (filter.project !== undefined) requireCovered(by, "audit/list", "the trail", [filter.project]);
    // What was just done is in the answer (its row may still be waiting for its write).
    await this.writes.flush();
    const within = by.projects === null ? undefined : { projects: by.projects, principal: by.name };
    const rows = await this.deps.repos.audit.listAudit({
      since: filter.since ?? 0,
      project: filter.project,
      after: filter.after,
      limit: filter.limit ?? 1000,
      within,
    });
    return rows.map(auditView);
  }
}

export function auditView(row: AuditRow): z.input<typeof AuditEvent> {
  return {
    id: Number(row.id),
    at: Number(row.at),
    action: row.action as AuditAction,
    principal: row.principal,
    client: row.client,
    project: row.project,
    run: row.run,
    path: row.path,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  };
}
