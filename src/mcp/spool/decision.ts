import { factsChanged, SpoolRpcError } from "../../client/spool-client.js";
import { defaultRunnerName, escapeControl, factsRevision, factsText } from "../../protocol/proposal-facts.js";
import { ENTRY } from "../../protocol/status.js";
import { producerOf } from "../../protocol/views.js";
import { HEARTBEAT_MS, type Progress } from "./progress.js";
import type { Extra, Resolved, Session, SpoolSide } from "./spool-side.js";
import { message } from "./text.js";

/*
 * The decision on a run_command's proposal: whoever makes it (any Spool client, an always-allow rule, or this
 * MCP client's user through elicitation), the call waits for it and says so; a cancelled call withdraws it.
 */

/** An elicitation stays open this long at most (a person may be away); the proposal waits on after it. */
const ELICITATION_TIMEOUT_MS = 24 * 3600 * 1000;

/**
 * Waits for the decision on a proposal (from any client, a rule, or this client's elicitation), telling the
 * MCP client what it waits for. Null when the call was cancelled first (the proposal is then rejected).
 */
export async function awaitDecision(side: SpoolSide, session: Session, path: string, extra: Extra, progress: Progress): Promise<Resolved | null> {
  let settle!: (notice: Resolved | null) => void;
  const decided = new Promise<Resolved | null>((resolve) => (settle = resolve));
  const early = side.takeEarly(path);
  if (early) return early;
  side.waiters.set(path, (notice) => settle(notice));
  const asked = new AbortController();
  const onAbort = () => {
    const why = side.closing ? `the MCP client ${session.who} closed the connection` : `cancelled by ${session.who} (MCP notifications/cancelled)`;
    void session.client
      .call("run/resolve", { run: session.run!, path, decision: "reject", reason: why })
      .catch((error: unknown) => {
        if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) side.log.warn(`withdrawing ${path}: ${message(error)}`);
      })
      .finally(() => settle(null));
  };
  extra.signal.addEventListener("abort", onAbort, { once: true });
  let heartbeat: NodeJS.Timeout | null = null;
  try {
    // A rule may have accepted it before the reply, or the decision came before this waiter.
    const already = await side.decidedAlready(session, path);
    if (already) return already;
    if (extra.signal.aborted) onAbort();
    const shown = await factsShown(session, session.run!, path);
    progress.say(`waiting for a decision on ${path} (Spool web view, spool approve, or an editor)`);
    heartbeat = setInterval(() => progress.say(`still waiting for a decision on ${path}`), HEARTBEAT_MS);
    // Elicitation decides: only a person's credential may (an agent's never accepts).
    if (side.options.role === "person" && side.peer?.getClientCapabilities()?.elicitation?.form) elicit(side, session, path, shown, asked.signal);
    const d = await decided;
    return d;
  } finally {
    if (heartbeat) clearInterval(heartbeat);
    asked.abort(new Error("decided"));
    extra.signal.removeEventListener("abort", onAbort);
    side.waiters.delete(path);
  }
}

/**
 * The facts of a proposal as every client shows them (control characters escaped), for a person to decide on,
 * with their revision (what an accept of them names: `run/resolve`'s `facts`), and whether it still waits.
 */
export interface Shown {
  text: string;
  revision: number;
  proposed: boolean;
}

export async function factsShown(session: Session, run: string, path: string): Promise<Shown> {
  const log = await session.client.call("entry/get", { run, path, limit: 1 });
  const facts = producerOf(log);
  const runners = facts.runner === null ? await session.client.call("runner/list", {}).catch(() => null) : null;
  const text = factsText(facts, { defaultRunner: runners ? defaultRunnerName(runners.runners) : null });
  return { text, revision: factsRevision(facts), proposed: log.status === ENTRY.proposed };
}

/** Why a person is asked again (an accept refused FACTS_CHANGED: nothing ran), said before the new facts. */
export const changedNote = (why: string) => `Not accepted: ${escapeControl(why)}. The facts below are the new ones.`;

/** The elicitation (form) that asks a person to decide a proposal: the same one over every MCP revision. */
export function approvalForm(run: string, path: string, shown: Shown, note?: string) {
  return {
    mode: "form" as const,
    message: `${note ? `${note}\n\n` : ""}Spool: run this command? (run ${run}, ${path})\n\n${shown.text}\n\nAny Spool client can decide it too; the first decision counts.`,
    requestedSchema: {
      type: "object" as const,
      properties: {
        decision: {
          type: "string" as const,
          title: "Decision",
          enum: ["accept", "reject"],
          enumNames: ["Accept: run it", "Reject: do not run it"],
        },
        reason: { type: "string" as const, title: "Reason (recorded with a rejection)" },
      },
      required: ["decision"],
    },
  };
}

/** What an elicitation's answer decides: accept, reject (with its reason), or nothing (dismissed). */
export function answerOf(answer: {
  action?: unknown;
  content?: Record<string, unknown> | undefined;
}): { decision: "accept" | "reject"; reason?: string } | null {
  if (answer.action === "cancel") return null;
  const accept = answer.action === "accept" && answer.content?.decision === "accept";
  const reason = typeof answer.content?.reason === "string" && answer.content.reason ? answer.content.reason : undefined;
  return { decision: accept ? "accept" : "reject", ...(reason ? { reason } : {}) };
}

/** Decides a proposal as an answer says: an accept names the facts revision it saw; a reject says why, or where. */
export function decide(session: Session, proposal: { run: string; path: string }, answer: { decision: "accept" | "reject"; reason?: string }, facts: number) {
  const { run, path } = proposal;
  return session.client.call(
    "run/resolve",
    answer.decision === "accept"
      ? { run, path, decision: "accept", facts, ...(answer.reason ? { reason: answer.reason } : {}) }
      : { run, path, decision: "reject", reason: answer.reason ?? `declined in ${session.who}` },
  );
}

/**
 * Asks the MCP client's user (`elicitation/create`); withdrawn (notifications/cancelled) once anyone decides. An accept
 * names the facts revision shown; refused because the facts changed since (FACTS_CHANGED: nothing ran), the user is
 * asked again on the facts as they are now, the message saying why.
 */
function elicit(side: SpoolSide, session: Session, path: string, shown: Shown, signal: AbortSignal, note?: string): void {
  const run = session.run!;
  side.peer
    ?.elicitInput(approvalForm(run, path, shown, note), { signal, timeout: ELICITATION_TIMEOUT_MS })
    .then(async (answer) => {
      if (signal.aborted) return;
      // Dismissed without a choice: the proposal waits for another client.
      const decided = answerOf(answer);
      if (!decided) return;
      await decide(session, { run, path }, decided, shown.revision).catch(async (error: unknown) => {
        if (factsChanged(error)) return askAgain(side, session, path, signal, error.message);
        if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) side.log.warn(`deciding ${path}: ${message(error)}`);
      });
    })
    .catch((error: unknown) => {
      if (!signal.aborted) side.log.warn(`elicitation for ${path} failed: ${message(error)}`);
    });
}

/** The facts changed before the accept: read again and, if it still waits, asked about on its facts now. */
async function askAgain(side: SpoolSide, session: Session, path: string, signal: AbortSignal, why: string): Promise<void> {
  const shown = await factsShown(session, session.run!, path);
  if (signal.aborted || !shown.proposed) return;
  elicit(side, session, path, shown, signal, changedNote(why));
}
