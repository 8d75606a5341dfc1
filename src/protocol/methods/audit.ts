import { z } from "zod";
import { PROJECT_NAME, PROJECT_NAME_RULE } from "../common.js";
import { request } from "../define.js";

/** The acts the audit trail records. */
export const AUDIT_ACTIONS = [
  "proposal",
  "decision",
  "expired",
  "cancel",
  "abort",
  "egress",
  "input",
  "sign-in",
  "device/address",
  "device/revoke",
  "token/create",
  "token/revoke",
  "notify/add",
  "notify/remove",
] as const;

export const AuditEvent = z.object({
  id: z.number().int(),
  at: z.number().int().describe("When (ms since the epoch)"),
  action: z.enum(AUDIT_ACTIONS),
  principal: z.string().describe("Who: a principal's name, `deadline`, or `model (ALIAS)` for a model's proposal"),
  client: z.string().nullable().describe("Through which client (spool-cli, spool-web…); null when none"),
  project: z.string().nullable(),
  run: z.string().nullable(),
  path: z.string().nullable().describe("The proposal's log path, where the act concerns one"),
  detail: z.record(z.string(), z.unknown()).describe("What else the act names: decision, reason, role, receiver…"),
});

export const auditList = request({
  name: "audit/list",
  description: "The audit trail: every proposal, decision, expiry, cancel, abort, input sent, sign-in, token and notify change, oldest first.",
  access: "none",
  role: "admin",
  params: z.strictObject({
    since: z.number().int().nonnegative().optional().describe("Only acts at or after this time (ms since the epoch); default: all"),
    project: z.string().regex(PROJECT_NAME, PROJECT_NAME_RULE).optional().describe("Only this project's acts"),
    after: z.number().int().nonnegative().optional().describe("Only acts after this id (the last of a page)"),
    limit: z.number().int().min(1).max(1000).optional().describe("At most this many (default and most: 1000)"),
  }),
  result: z.object({ events: z.array(AuditEvent) }),
});
