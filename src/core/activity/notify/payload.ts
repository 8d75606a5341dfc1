import { createHash } from "node:crypto";
import { raiseCommand } from "../../../protocol/agent-words.js";
import { type NotifyBody, notifyText } from "../../../protocol/notify-body.js";
import { factsOf } from "../../../protocol/views.js";
import { wireAttributes } from "../../../store/entries.js";
import type { EntryRow } from "../../../store/schema.js";

/** What happened to a proposal, or to a run (paused at its budget), as a notification tells it. */
export type NotifyFact =
  | { event: "proposal" }
  | { event: "decided" | "expired"; outcome: "accept" | "reject"; by: string; reason: string | null }
  | { event: "finished"; status: number; outcome: string; exitCode: number | null; reason: string | null }
  | { event: "budget"; reached: { kind: "tokens" | "costUsd" | "seconds" | "commands"; limit: number; used: number } };

/** The page's link to a proposal, or to a run without a path: the address's fragment is #/project/run/path (src/web/page/route.ts). */
export function pageLink(base: string | null, project: string, run: string, path: string | null): string | null {
  if (base === null) return null;
  return `${base}#/${[project, run, ...(path ? [path] : [])].map(encodeURIComponent).join("/")}`;
}

/** An event's body: what every receiver gets but its delivery id. */
export type EventBody = Omit<NotifyBody, "delivery">;

/**
 * The X-Spool-Delivery id of an event's delivery to one receiver: a UUID derived from the event's random uuid and
 * the receiver, so it is the same on every attempt (from any server) without a copy kept per receiver.
 */
export function deliveryId(eventUuid: string, targetId: number): string {
  const hex = createHash("sha256").update(`${eventUuid}:${targetId}`).digest("hex");
  // Shaped as an RFC 9562 UUID of version 8 (made by the application) and the RFC's variant.
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * What an event's row keeps: what its body is made from (the entry's attributes as they were stored), not the
 * body itself — building it costs the proposal nothing; the sender builds it, the same each attempt.
 */
export interface StoredEvent {
  fact: NotifyFact;
  project: string;
  run: string;
  pageBase: string | null;
  path: string;
  attributes: string;
  at: number;
}

/** What the text says when env values were left out of a body. */
export const ENV_VALUES_LEFT_OUT = "env values left out (the receiver was added without --include-env-values)";

/**
 * An event's row as stored, as one receiver gets it: env values only when it opted in (includeEnvValues), else the
 * names with their values left out and the text saying so. A row queued before migration 015 holds the body itself.
 */
export function eventBody(stored: StoredEvent | EventBody, includeEnvValues = false): EventBody {
  if (!("fact" in stored)) return includeEnvValues ? stored : withoutEnvValues(stored);
  if (stored.fact.event === "budget") return budgetPayload(stored.fact.reached, stored, stored.at);
  const body = notifyPayload(stored.fact, stored, { path: stored.path, attributes: stored.attributes }, stored.at, includeEnvValues);
  return body;
}

/** The body of a budget event: the run paused, which budget, and how to raise it; no command, so no facts. */
export function budgetPayload(
  reached: Extract<NotifyFact, { event: "budget" }>["reached"],
  where: { project: string; run: string; pageBase: string | null },
  at: number,
): EventBody {
  const base: Omit<NotifyBody, "text" | "delivery"> = {
    event: "budget",
    at,
    project: where.project,
    run: where.run,
    path: null,
    facts: null,
    proposedBy: null,
    decision: null,
    finished: null,
    budget: { ...reached, raise: raiseCommand(where.run, reached) },
    url: pageLink(where.pageBase, where.project, where.run, null),
  };
  return { ...base, text: notifyText(base, null) };
}

function withoutEnvValues(body: EventBody): EventBody {
  if (!body.facts || body.facts.env.length === 0) return body;
  const facts = { ...body.facts, env: body.facts.env.map(([name]) => [name, "(left out)"] as [string, string]) };
  return { ...body, facts, text: `${notifyText(body, facts)}\n  ${ENV_VALUES_LEFT_OUT}` };
}

/** The json body of an event, every receiver's but for its delivery id (deliveryId). */
export function notifyPayload(
  fact: Exclude<NotifyFact, { event: "budget" }>,
  where: { project: string; run: string; pageBase: string | null },
  log: Pick<EntryRow, "path" | "attributes">,
  at: number,
  includeEnvValues = true,
): EventBody {
  const attributes = wireAttributes(log);
  const facts = factsOf(attributes);
  const base: Omit<NotifyBody, "text" | "delivery"> = {
    event: fact.event,
    at,
    project: where.project,
    run: where.run,
    path: log.path,
    facts,
    proposedBy: typeof attributes.proposedBy === "string" ? attributes.proposedBy : null,
    decision: fact.event === "decided" || fact.event === "expired" ? { outcome: fact.outcome, by: fact.by, reason: fact.reason } : null,
    finished: fact.event === "finished" ? { status: fact.status, outcome: fact.outcome, exitCode: fact.exitCode, reason: fact.reason } : null,
    budget: null,
    url: pageLink(where.pageBase, where.project, where.run, log.path),
  };
  const body = { ...base, text: notifyText(base, facts) };
  return includeEnvValues ? body : withoutEnvValues(body);
}
