import type { z } from "zod";
import type { AuditAction, AuditDetail, AuditEvent } from "../../protocol/methods/audit.js";
import type { PrincipalRef, TransportKind } from "../../protocol/roles.js";
import type { AuditRow } from "../../store/schema.js";
import type { CoreDeps } from "../deps.js";
import { requireCovered } from "../scope.js";
import type { ActivityWrites } from "./writes.js";

export type { AuditAction } from "../../protocol/methods/audit.js";

/** One act for the trail: its detail is its action's (src/protocol/methods/audit.ts). */
export type AuditAct = {
  [A in AuditAction]: {
    action: A;
    principal: string;
    /** How its connection reached the server, as the server verified it (null: no connection's act). */
    transport?: TransportKind | null | undefined;
    /** The client the caller claims to be (initialize's clientInfo.name). */
    client?: string | null | undefined;
    project?: string | null | undefined;
    run?: string | null | undefined;
    path?: string | null | undefined;
    detail: AuditDetail<A>;
  };
}[AuditAction];

/** An act of a connection's caller: who, the transport and the claim come from the connection. */
export type CallerAct = AuditAct extends infer T ? (T extends AuditAct ? Omit<T, "principal" | "client" | "transport"> : never) : never;

/** A caller as the trail sees it: its principal, the transport the server verified, the client it claims. */
export interface AuditCaller {
  principal: { name: string };
  via?: TransportKind | undefined;
  clientInfo?: { name: string } | null | undefined;
}

/**
 * `alice via spool-cli` (describeCaller's words) as the principal and the client; words of another shape are the
 * principal. `alice via connection 0123456789ab` (a caller that named no client) has no client.
 */
export function whoOf(by: string): { principal: string; client: string | null } {
  const at = by.indexOf(" via ");
  if (at < 0) return { principal: by, client: null };
  const client = by.slice(at + 5);
  return { principal: by.slice(0, at), client: UNNAMED_CLIENT.test(client) ? null : client };
}

/** describeCaller's words for a connection that named no client at initialize. */
const UNNAMED_CLIENT = /^connection [0-9a-f]{12}$/;

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

  /** Records an act of a connection's caller: its principal, the transport it came by, and the client it named at initialize. */
  byCaller(caller: AuditCaller, act: CallerAct): Promise<void> {
    return this.record({ ...act, principal: caller.principal.name, transport: caller.via ?? null, client: caller.clientInfo?.name ?? null } as AuditAct);
  }

  async record(act: AuditAct): Promise<void> {
    const at = Date.now();
    const fields = {
      principal: act.principal,
      ...(act.transport ? { transport: act.transport } : {}),
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
        transport: act.transport ?? null,
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
    transport: (row.transport as TransportKind | null) ?? null,
    client: row.client,
    project: row.project,
    run: row.run,
    path: row.path,
    detail: JSON.parse(row.detail) as AuditDetail<AuditAction>,
  } as z.input<typeof AuditEvent>;
}
