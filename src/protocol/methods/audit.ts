import { z } from "zod";
import { DECISION_HOWS, RESOLVER_KINDS } from "../common.js";
import { request } from "../define.js";
import { PROJECT_NAME, PROJECT_NAME_RULE } from "../project-name.js";
import { RoleName } from "../role-schemas.js";
import { TRANSPORTS } from "../roles.js";
import { NotifyEvent, NotifyFormat } from "./notify.js";

/*
 * The audit trail's acts, each with the `detail` Spool sets for it: one schema per action, so the discovery document
 * and SPEC (generated) say exactly what each act names. A field marked "older rows" is absent from rows written before
 * it was recorded; nothing else is ever absent.
 */

const integer = () => z.number().int();

/** A command as the trail keeps it (the whole command stays in its entry). */
const commandFields = {
  commandDigest: z.string().describe("`sha256:` and the command's SHA-256"),
  commandBytes: integer().describe("Its size in bytes"),
  commandHead: z.string().describe("Its first 256 bytes (whole characters)"),
};

const decisionDetail = z.object({
  decision: z.enum(["accept", "reject"]),
  reason: z.string().nullable(),
  by: z.string().describe("Who decided, in the words run/resolved gives (resolvedBy)"),
  resolver: z.enum(RESOLVER_KINDS),
  how: z.enum(DECISION_HOWS).optional().describe("How it was decided (absent in older rows)"),
  rule: integer().optional().describe("The rule that accepted it (how: rule)"),
  setBy: z.string().optional().describe("The principal that set that rule"),
  setVia: z.string().nullable().optional().describe("The client that principal's connection claimed when it set the rule"),
});

/** Each action's detail. The order is the order SPEC lists them in. */
export const AUDIT_DETAILS = {
  proposal: z.object(commandFields).partial().describe("A proposal was stored (by a client, or `model (ALIAS)`)"),
  decision: decisionDetail.describe(
    "A proposal was accepted or rejected: by a person's key or flag, a rule (principal `rule #N`), run/abort, or withdrawn when its proposer's credential was revoked (resolver `revoked`, principal: the revoker)",
  ),
  expired: decisionDetail.describe("Its deadline rejected a proposal nobody decided (principal `deadline`)"),
  "rule/create": z
    .object({
      rule: integer(),
      setBy: z.string(),
      tool: z.string().nullable(),
      ...commandFields,
      cwd: z.string().nullable(),
      envNames: z.array(z.string()).describe("The env variables' names (never their values)"),
      runner: z.string(),
    })
    .describe("An always-allow rule was stored with an accept: the facts it covers"),
  cancel: z.object({ reason: z.string().nullable().describe("The canceller's words; null: it gave none") }).describe("A running command was cancelled"),
  abort: z
    .object({ reason: z.string().nullable(), rejected: z.array(z.string()), cancelled: z.array(z.string()) })
    .describe("run/abort: the proposals it rejected and the commands it cancelled"),
  egress: z
    .object({ allowed: z.array(z.string()), blocked: z.array(z.string()) })
    .describe("Network mode allowlist: what a finished command reached and was refused (under the principal that accepted it)"),
  input: z.object({ bytes: integer().describe("How many bytes (never the bytes)") }).describe("Input was sent to a command"),
  signal: z.object({ signal: z.string() }).describe("stream/signal"),
  prompt: z.object({ loop: integer(), model: z.string(), promptBytes: integer() }).describe("run/prompt (its size, not its text)"),
  budget: z
    .object({
      budget: z.record(z.string(), z.number()).describe("The run's own budget afterwards"),
      resumed: z.boolean().describe("The run was paused at its budget and went on"),
    })
    .describe("run/budget: a run's budget raised or set"),
  "project/create": z.object({ name: z.string(), root: z.string().describe("Its root, absolute") }).describe("initialize or project/create created a project"),
  "project/delete": z
    .object({ name: z.string(), root: z.string(), runs: integer().describe("Runs removed with it"), closed: integer().describe("Connections closed") })
    .describe("A project was removed with everything stored of it"),
  "runner/attach": z
    .object({
      name: z.string(),
      backend: z.string(),
      default: z.boolean().describe("Whether it attached as the project's default runner"),
      resumed: integer().describe("Producers it took back (a re-attach)"),
    })
    .describe("A runner attached to a project"),
  "runner/default": z
    .object({ runner: z.string(), before: z.string().nullable().describe("The default runner it took over from; null: there was none") })
    .describe("A project's default runner changed (an attach with default)"),
  "runner/drain": z
    .object({
      runner: z.string(),
      draining: z.boolean().describe("true: it takes nothing new; false: it claims again"),
      running: integer().describe("Commands it ran then (they finish)"),
    })
    .describe("A runner was drained (spool runners drain), or let claim again"),
  "sign-in": z
    .object({ address: z.string().nullable(), device: z.string(), name: z.string() })
    .describe("A page was paired (spool open's code spent): its device and address"),
  "device/address": z
    .object({ device: z.string(), name: z.string(), address: z.string().nullable(), before: z.string().nullable() })
    .describe("A paired device was used from another address"),
  "device/revoke": z
    .object({ device: z.string(), name: z.string(), of: z.string().describe("The device's principal"), closed: integer() })
    .describe("A device was unpaired"),
  "token/create": z
    .object({ name: z.string(), role: RoleName, projects: z.array(z.string()).nullable(), expiresAt: integer().nullable() })
    .describe("A credential was created"),
  "token/revoke": z
    .object({
      name: z.string(),
      role: RoleName,
      closed: integer(),
      withdrawn: integer().optional().describe("Its proposals that waited for a decision, withdrawn (absent in older rows)"),
      minted: z.array(z.string()).optional().describe("The credentials minted under it, revoked with it (absent when none)"),
    })
    .describe("A credential was revoked"),
  "notify/add": z
    .object({
      name: z.string(),
      url: z.string().describe("Redacted: scheme, host and the path's last four characters"),
      events: z.array(NotifyEvent),
      format: NotifyFormat,
      projects: z.array(z.string()).nullable(),
    })
    .describe("A receiver was added"),
  "notify/remove": z
    .object({ name: z.string(), url: z.string().describe("Redacted"), dropped: integer().describe("Deliveries owed to it, dropped") })
    .describe("A receiver was removed"),
  "notify/test": z.object({ name: z.string(), ok: z.boolean(), status: integer().nullable() }).describe("notify/test POSTed a test body to a receiver"),
} as const;

export type AuditAction = keyof typeof AUDIT_DETAILS;
export type AuditDetail<A extends AuditAction> = z.input<(typeof AUDIT_DETAILS)[A]>;

/** The acts the audit trail records. */
export const AUDIT_ACTIONS = Object.keys(AUDIT_DETAILS) as [AuditAction, ...AuditAction[]];

const eventFields = {
  id: integer(),
  at: integer().describe("When (ms since the epoch)"),
  principal: z.string().describe("Who: a principal's name, `deadline`, `rule #N` for a rule's accept, or `model (ALIAS)` for a model's proposal"),
  transport: z
    .enum(TRANSPORTS)
    .nullable()
    .describe(
      "How the act's connection reached the server, as the server verified it; null: no connection's act (a deadline, a rule) or a row from before it was recorded",
    ),
  client: z.string().nullable().describe("The client the caller claims to be (initialize's clientInfo.name): a claim, not verified; null when it named none"),
  project: z.string().nullable(),
  run: z.string().nullable(),
  path: z.string().nullable().describe("The proposal's log path, where the act concerns one"),
};

const eventOf = <A extends AuditAction>(action: A) => z.object({ ...eventFields, action: z.literal(action), detail: AUDIT_DETAILS[action] });

type EventSchema = { [A in AuditAction]: ReturnType<typeof eventOf<A>> }[AuditAction];

/** One act of the trail: its detail's shape is its action's. */
export const AuditEvent = z.discriminatedUnion("action", AUDIT_ACTIONS.map(eventOf) as unknown as [EventSchema, ...EventSchema[]]);

export const auditList = request({
  name: "audit/list",
  description:
    "The audit trail, oldest first: every act worth answering for (proposals, decisions, rules, input, signals, prompts, projects, runners, sign-ins, tokens, receivers), with who, the transport the server verified and the client the caller claims.",
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
