import { z } from "zod";
import { request } from "../define.js";
import { PROJECT_NAME, PROJECT_NAME_RULE } from "../project-name.js";
import { NOTIFY_EVENTS, NOTIFY_FORMATS } from "../receiver-state.js";

// The names live with the receivers' words (receiver-state.ts: zod-free, what `spool notify` loads).
export { NOTIFY_EVENTS, NOTIFY_FORMATS } from "../receiver-state.js";

export const NotifyEvent = z.enum(NOTIFY_EVENTS);

export const NotifyFormat = z.enum(NOTIFY_FORMATS);

export const NotifyName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "a receiver's name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");

export const NotifyUrl = z
  .string()
  .max(2048)
  .refine((text) => {
    try {
      const url = new URL(text);
      return (url.protocol === "http:" || url.protocol === "https:") && url.username === "" && url.password === "";
    } catch {
      return false;
    }
  }, "an http:// or https:// URL without a user or password in it");

/** A receiver as `notify/list` shows it: never its secret, which only `notify/add` shows, once. */
export const NotifyTargetView = z.object({
  name: z.string(),
  url: z.string().describe("Redacted: scheme, host and the path's last four characters (a Slack or ntfy URL is itself a credential)"),
  events: z.array(NotifyEvent),
  format: NotifyFormat,
  projects: z.array(z.string()).nullable().describe("The projects it is told of; null: every project"),
  includeEnvValues: z.boolean().describe("Whether its bodies carry env values; false: env names only, the text saying the values were left out"),
  createdAt: z.number().int(),
  createdBy: z.string().describe("The principal that added it"),
  pending: z.number().int().describe("Deliveries still owed to it (waiting, or being retried)"),
  lastError: z.string().nullable().describe("Why a delivery still owed last failed; null: none did"),
  deliveredAt: z.number().int().nullable().describe("When a delivery last reached it (a 2xx answer), ms since the epoch; null: none has yet"),
  failingSince: z
    .number()
    .int()
    .nullable()
    .describe("Since when its deliveries fail (the first failed attempt since the last one it took), ms since the epoch; null: it is not failing"),
});

export const notifyAdd = request({
  name: "notify/add",
  description:
    "Adds a receiver of notifications: every event named (default: all of them) of the projects named (default: every project) is POSTed to its URL from a durable outbox, signed with a secret (X-Spool-Signature: sha256=HMAC of the body). The reply holds the secret, shown this once. A name already taken is CONFLICT.",
  access: "none",
  role: "admin",
  params: z.strictObject({
    name: NotifyName,
    url: NotifyUrl,
    events: z
      .array(NotifyEvent)
      .min(1)
      .max(NOTIFY_EVENTS.length)
      .optional()
      .describe("The events it gets (default: all of proposal, decided, finished, expired, budget)"),
    format: NotifyFormat.optional().describe("json (default), slack (an incoming webhook) or ntfy (a topic URL)"),
    projects: z
      .array(z.string().regex(PROJECT_NAME, PROJECT_NAME_RULE))
      .min(1)
      .max(100)
      .optional()
      .describe("The projects it is told of; absent: every project"),
    includeEnvValues: z
      .boolean()
      .optional()
      .describe("Send env values in its bodies (default false: env names only, the text saying the values were left out)"),
  }),
  result: z.object({ secret: z.string().describe("The signing secret; shown this once"), target: NotifyTargetView }),
});

export const notifyList = request({
  name: "notify/list",
  description: "The receivers of notifications, oldest first, each with the deliveries still owed to it.",
  access: "none",
  role: "admin",
  params: z.strictObject({}),
  result: z.object({ targets: z.array(NotifyTargetView) }),
});

export const notifyRemove = request({
  name: "notify/remove",
  description: "Removes a receiver; the deliveries still owed to it are dropped. A name no receiver has is NOT_FOUND.",
  access: "none",
  role: "admin",
  params: z.strictObject({ name: NotifyName }),
  result: z.object({ target: NotifyTargetView }),
});

export const notifyTest = request({
  name: "notify/test",
  description:
    "Sends a receiver one signed `test` event now (not through the outbox: nothing is retried) and says what it answered. A name no receiver has is NOT_FOUND.",
  access: "none",
  role: "admin",
  params: z.strictObject({ name: NotifyName }),
  result: z.object({
    delivery: z.string().describe("The X-Spool-Delivery id it was sent with"),
    ok: z.boolean().describe("Whether the receiver answered 2xx"),
    status: z.number().int().nullable().describe("The receiver's HTTP status; null: no answer"),
    error: z.string().nullable().describe("Why it failed; null when it did not"),
  }),
});
