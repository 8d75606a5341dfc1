import { randomUUID } from "node:crypto";
import { type NotifyBody, notifyText } from "../../protocol/notify-body.js";
import { factsOf } from "../../protocol/views.js";
import { wireAttributes } from "../../store/entries.js";
import type { EntryRow } from "../../store/schema.js";

/** What happened to a proposal, as a notification tells it. */
export type NotifyFact =
  | { event: "proposal" }
  | { event: "decided" | "expired"; outcome: "accept" | "reject"; by: string; reason: string | null }
  | { event: "finished"; status: number; outcome: string; exitCode: number | null; reason: string | null };

/** The page's link to a proposal: the address's fragment is #/project/run/path (src/web/page/route.ts). */
export function pageLink(base: string | null, project: string, run: string, path: string): string | null {
  if (base === null) return null;
  return `${base}#/${[project, run, path].map(encodeURIComponent).join("/")}`;
}

/** The json body of one delivery (its id fixed here, so every attempt sends the same). */
export function notifyPayload(
  fact: NotifyFact,
  where: { project: string; run: string; pageBase: string | null },
  log: Pick<EntryRow, "path" | "attributes">,
): NotifyBody {
  const attributes = wireAttributes(log);
  const facts = factsOf(attributes);
  const base: Omit<NotifyBody, "text"> = {
    event: fact.event,
    delivery: randomUUID(),
    at: Date.now(),
    project: where.project,
    run: where.run,
    path: log.path,
    facts,
    proposedBy: typeof attributes.proposedBy === "string" ? attributes.proposedBy : null,
    decision: fact.event === "decided" || fact.event === "expired" ? { outcome: fact.outcome, by: fact.by, reason: fact.reason } : null,
    finished: fact.event === "finished" ? { status: fact.status, outcome: fact.outcome, exitCode: fact.exitCode, reason: fact.reason } : null,
    url: pageLink(where.pageBase, where.project, where.run, log.path),
  };
  return { ...base, text: notifyText(base, facts) };
}
