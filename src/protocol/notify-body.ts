import { z } from "zod";
import { escapeControl, factsText } from "./proposal-facts.js";
import type { ProposalFacts } from "./views.js";
import { ProposalFacts as ProposalFactsSchema } from "./views-schemas.js";

/*
 * What a receiver of notifications gets (`notify/add`), in the `json` format: the event, where it happened, the
 * proposal's facts as every client shows them, the decision or the end, a link to the proposal on the page, and
 * `text`, the same as one block a person reads (control characters escaped) — what the `slack` and `ntfy`
 * formats send. SPEC §"Notifications" describes it; src/core/notify renders and signs it.
 */

export const NotifyDecision = z.object({
  outcome: z.enum(["accept", "reject"]),
  by: z.string().describe("Who decided: `alice via spool-web`, an always-allow rule, `deadline`"),
  reason: z.string().nullable(),
});

export const NotifyBody = z.object({
  event: z.enum(["proposal", "decided", "finished", "expired", "test"]),
  delivery: z.string().describe("The X-Spool-Delivery id: the same on every attempt"),
  at: z.number().int().describe("When it happened (ms since the epoch)"),
  project: z.string(),
  run: z.string(),
  path: z.string().describe("The proposal's log path"),
  facts: ProposalFactsSchema.describe("What a client shows before a decision (src/protocol/views.ts factsOf)"),
  proposedBy: z.string().nullable(),
  decision: NotifyDecision.nullable().describe("For decided and expired"),
  finished: z
    .object({ status: z.number().int(), outcome: z.string(), exitCode: z.number().int().nullable(), reason: z.string().nullable() })
    .nullable()
    .describe("For finished"),
  url: z.string().nullable().describe("The page's link to the proposal on the server that sent it; null when it serves none"),
  text: z.string().describe("The same in words, one block, control characters escaped"),
});
export type NotifyBody = z.output<typeof NotifyBody>;

const HEADLINES: Record<NotifyBody["event"], string> = {
  proposal: "waits for a decision",
  decided: "was decided",
  finished: "finished",
  expired: "expired undecided",
  test: "test notification",
};

/** The one-line title: `Spool: a command waits for a decision in demo/run-1`. */
export function notifyTitle(body: Omit<NotifyBody, "text" | "delivery">): string {
  return escapeControl(`Spool: ${body.event === "test" ? HEADLINES.test : `a command ${HEADLINES[body.event]}`} in ${body.project}/${body.run}`);
}

/** The body in words: the title, the command's facts (escaped by the clients' formatter), the decision or end, the link. */
export function notifyText(body: Omit<NotifyBody, "text" | "delivery">, facts: ProposalFacts): string {
  const lines = [notifyTitle(body), factsText(facts, { indent: "  " })];
  if (body.proposedBy) lines.push(`  proposed by ${escapeControl(body.proposedBy)}`);
  if (body.decision) {
    const word = body.decision.outcome === "accept" ? "accepted" : "rejected";
    lines.push(`${word} by ${escapeControl(body.decision.by)}${body.decision.reason ? `: ${escapeControl(body.decision.reason)}` : ""}`);
  }
  if (body.finished) {
    const exit = body.finished.exitCode === null ? "" : `, exit ${body.finished.exitCode}`;
    lines.push(
      `${escapeControl(body.finished.outcome)} (${body.finished.status}${exit})${body.finished.reason ? `: ${escapeControl(body.finished.reason)}` : ""}`,
    );
  }
  if (body.url) lines.push(escapeControl(body.url));
  return lines.join("\n");
}
