import { z } from "zod";
import { pausedWords } from "./agent-words.js";
import { escapeControl, factsText } from "./proposal-facts.js";
import type { ProposalFacts } from "./views.js";
import { ProposalFacts as ProposalFactsSchema } from "./views-schemas.js";

/*
 * What a receiver of notifications gets (`notify/add`), in the `json` format: the event, where it happened, the
 * proposal's facts as every client shows them, the decision or the end, a link to the proposal on the page, and
 * `text`, the same as one block a person reads (control characters escaped) — what the `slack` and `ntfy`
 * formats send. SPEC §"Notifications" describes it; src/core/activity/notify renders and signs it.
 */

export const NotifyDecision = z.object({
  outcome: z.enum(["accept", "reject"]),
  by: z.string().describe("Who decided: `alice via spool-web`, an always-allow rule, `deadline`"),
  reason: z.string().nullable(),
});

/** A run paused at its budget: which budget, its limit, what was used, and how a person lets it go on. */
export const NotifyBudget = z.object({
  kind: z.enum(["tokens", "costUsd", "seconds", "commands"]),
  limit: z.number(),
  used: z.number(),
  raise: z.string().describe("The command that raises it by its step and lets the run go on: `spool budget RUN +5$`"),
});

export const NotifyBody = z.object({
  event: z.enum(["proposal", "decided", "finished", "expired", "budget", "test"]),
  delivery: z.string().describe("The X-Spool-Delivery id: the same on every attempt"),
  at: z.number().int().describe("When it happened (ms since the epoch)"),
  project: z.string(),
  run: z.string(),
  path: z.string().nullable().describe("The proposal's log path; null for budget"),
  facts: ProposalFactsSchema.nullable().describe("What a client shows before a decision (src/protocol/views.ts factsOf); null for budget"),
  proposedBy: z.string().nullable(),
  decision: NotifyDecision.nullable().describe("For decided and expired"),
  finished: z
    .object({ status: z.number().int(), outcome: z.string(), exitCode: z.number().int().nullable(), reason: z.string().nullable() })
    .nullable()
    .describe("For finished"),
  budget: NotifyBudget.nullable()
    .optional()
    .describe("For budget: the budget the run paused at, and how to raise it; null for the others (absent from a body an older server stored)"),
  url: z.string().nullable().describe("The page's link to the proposal (for budget: to the run) on the server that sent it; null when it serves none"),
  text: z.string().describe("The same in words, one block, control characters escaped"),
});
export type NotifyBody = z.output<typeof NotifyBody>;

type Told = Omit<NotifyBody, "text" | "delivery">;

/** How a finished command ended, in words (the status numbers stay in the json body): `done, exit 0`, `failed, exit 2`, `cancelled`. */
function endWords(finished: NonNullable<NotifyBody["finished"]>): string {
  const exit = finished.exitCode === null ? "" : `, exit ${finished.exitCode}`;
  if (finished.outcome === "completed") return `${finished.status === 200 ? "done" : "failed"}${exit}`;
  return finished.outcome;
}

/** What happened, said first: `a command waits for a decision`, `accepted by alice`, `rejected by the deadline`, `a command failed, exit 2`. */
function headline(body: Told): string {
  switch (body.event) {
    case "proposal":
      return "a command waits for a decision";
    case "decided":
      return body.decision ? `${body.decision.outcome === "accept" ? "accepted" : "rejected"} by ${body.decision.by}` : "a command was decided";
    case "expired":
      return "rejected by the deadline";
    case "finished":
      return body.finished ? `a command ended: ${endWords(body.finished)}` : "a command ended";
    case "budget":
      return "a run paused at its budget";
    case "test":
      return "test notification";
  }
}

/** The one-line title, what happened and where: `Spool: accepted by alice in demo/run-1` (a test names no run). */
export function notifyTitle(body: Told): string {
  return escapeControl(`Spool: ${headline(body)}${body.event === "test" ? "" : ` in ${body.project}/${body.run}`}`);
}

/**
 * The body in words: the title, the command's facts (escaped by the clients' formatter), the decision or end, the
 * link; for a budget, which one was reached and how to raise it or stop the run.
 */
export function notifyText(body: Omit<NotifyBody, "text" | "delivery">, facts: ProposalFacts | null): string {
  const link = body.url ? [escapeControl(body.url)] : [];
  if (body.event === "test") {
    return [notifyTitle(body), "spool notify test sent this: deliveries from Spool reach this receiver, signed with its secret.", ...link].join("\n");
  }
  if (body.budget) {
    const run = escapeControl(body.run);
    const raise = escapeControl(body.budget.raise);
    return [
      notifyTitle(body),
      `  ${pausedWords(body.budget)}`,
      `  no model call or command until it is raised: ${raise}`,
      `  or stopped: spool abort ${run}`,
      ...link,
    ].join("\n");
  }
  if (!facts) return [notifyTitle(body), ...link].join("\n");
  const lines = [notifyTitle(body), factsText(facts, { indent: "  " })];
  if (body.proposedBy) lines.push(`  proposed by ${escapeControl(body.proposedBy)}`);
  if (body.decision) {
    const word = body.decision.outcome === "accept" ? "accepted" : "rejected";
    lines.push(`${word} by ${escapeControl(body.decision.by)}${body.decision.reason ? `: ${escapeControl(body.decision.reason)}` : ""}`);
  }
  if (body.finished) {
    lines.push(`${escapeControl(endWords(body.finished))}${body.finished.reason ? `: ${escapeControl(body.finished.reason)}` : ""}`);
  }
  if (body.url) lines.push(escapeControl(body.url));
  return lines.join("\n");
}
