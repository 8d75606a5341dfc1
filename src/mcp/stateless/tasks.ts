import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server";
import { factsChanged, SpoolRpcError } from "../../client/spool-client.js";
import { producerOf } from "../../protocol/views.js";
import { answerOf, approvalForm, changedNote, decide, factsShown } from "../spool/decision.js";
import { report } from "../spool/output.js";
import type { Session } from "../spool/spool-side.js";
import { parseTaskId, TASK_CANCEL_REASON, TASK_POLL_MS, taskIdOf } from "../spool/task-id.js";

/*
 * The tasks extension (io.modelcontextprotocol/tasks) of MCP 2026-07-28. A task is a Spool proposal and its
 * producer: its id names the run and log path (src/mcp/spool/task-id.ts), so its state is the store's, read by whichever
 * server answers and after any restart; its times are its log entry's own. Waiting for a decision it is
 * `input_required` with the approval form for a caller who may decide (and elicits), else `working`; then
 * `working` while it runs, and `completed` with the result the synchronous call gives.
 */

/** The key of the one input a task asks: the decision on its proposal. */
export const DECISION_KEY = "decision";

/**
 * The key a task asks its decision under, naming the facts revision it shows: `decision` on the first facts,
 * `decision@N` once they changed. tasks/update carries no other state, so the key is how an answer says which facts
 * it saw; an accept of facts that changed since is refused (FACTS_CHANGED), nothing runs, and the task asks again.
 */
export const decisionKey = (revision: number) => (revision === 1 ? DECISION_KEY : `${DECISION_KEY}@${revision}`);

/** The decision among a tasks/update's input responses, and the facts revision its key names. */
function decisionOf(responses: unknown): { response: Record<string, unknown>; revision: number } | null {
  if (!responses || typeof responses !== "object") return null;
  for (const [key, response] of Object.entries(responses)) {
    const named = /^decision(?:@([1-9][0-9]{0,8}))?$/.exec(key);
    if (named && response && typeof response === "object") return { response: response as Record<string, unknown>, revision: Number(named[1] ?? 1) };
  }
  return null;
}

/** Who asks about a task: whether it may decide (a person's or admin's credential) and whether its client elicits. */
export interface TaskCaller {
  mayDecide: boolean;
  elicits: boolean;
}

type TaskView = Record<string, unknown> & { taskId: string; status: string };

function notFound(taskId: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidParams, `No task ${taskId} (unknown, or not this credential's to see)`);
}

async function producerOfTask(session: Session, taskId: string) {
  const id = parseTaskId(taskId);
  if (!id) throw notFound(taskId);
  try {
    const log = await session.client.call("entry/get", { ...id, limit: 1 });
    if (!log.producer) throw notFound(taskId);
    return { ...id, log, producer: producerOf(log) };
  } catch (error) {
    if (error instanceof SpoolRpcError && (error.errorCode === "NOT_FOUND" || error.errorCode === "INVALID_PARAMS" || error.errorCode === "FORBIDDEN"))
      throw notFound(taskId);
    throw error;
  }
}

/** A task's current state (tasks/get, and the CreateTaskResult's seed). */
export async function taskView(session: Session, taskId: string, caller: TaskCaller): Promise<TaskView> {
  const { run, path, log, producer: p } = await producerOfTask(session, taskId);
  const times = {
    createdAt: new Date(log.createdAt ?? Date.now()).toISOString(),
    lastUpdatedAt: new Date(log.updatedAt ?? log.createdAt ?? Date.now()).toISOString(),
  };
  const base = { taskId, ...times, ttlMs: null, pollIntervalMs: TASK_POLL_MS };
  switch (p.state) {
    case "proposed": {
      if (caller.mayDecide && caller.elicits) {
        const shown = await factsShown(session, run, path);
        const note = shown.revision === 1 ? undefined : changedNote(`the facts changed since it was proposed (facts revision ${shown.revision})`);
        return {
          ...base,
          status: "input_required",
          statusMessage: `waiting for a decision on ${path}: yours, or any Spool client's`,
          inputRequests: { [decisionKey(shown.revision)]: { method: "elicitation/create", params: approvalForm(run, path, shown, note) } },
        };
      }
      return {
        ...base,
        status: "working",
        statusMessage: `waiting for a person to approve or reject it (the Spool web view, spool approve, an editor): ${path}`,
      };
    }
    case "accepted":
    case "running":
      return { ...base, status: "working", statusMessage: `running${p.runner ? ` on ${p.runner}` : ""}` };
    case "cancelled":
      return { ...base, status: "cancelled", statusMessage: `cancelled${p.cancelledBy ? ` by ${p.cancelledBy}` : ""}${p.reason ? `: ${p.reason}` : ""}` };
    case "rejected": {
      if (p.reason === TASK_CANCEL_REASON) return { ...base, status: "cancelled", statusMessage: "withdrawn before a decision (tasks/cancel); it did not run" };
      const why = `Rejected by ${p.resolvedBy ?? "someone"}${p.reason ? `: ${p.reason}` : ""}. The command did not run.\n$ ${p.command}\n(${path})`;
      return {
        ...base,
        status: "completed",
        statusMessage: "rejected; it did not run",
        result: { content: [{ type: "text", text: why }], isError: true, resultType: "complete" },
      };
    }
    default: {
      // done, failed, aborted: the result the synchronous call gives.
      const by = p.resolvedBy ? `accepted by ${p.resolvedBy}${p.runner ? `, runs on ${p.runner}` : ""}` : null;
      const result = await report(session, run, path, by);
      return {
        ...base,
        status: "completed",
        statusMessage: p.signal ? `killed by ${p.signal}` : `exit ${p.exitCode === null ? "unknown" : String(p.exitCode)}`,
        result: { ...result, resultType: "complete" },
      };
    }
  }
}

/** A new task's first state: the proposal just made. */
export async function createdTask(session: Session, run: string, path: string, caller: TaskCaller): Promise<TaskView> {
  const view = await taskView(session, taskIdOf(run, path), caller);
  return { ...view, resultType: "task" };
}

/** tasks/update: the decision an input response carries, made by the caller's own credential. */
export async function updateTask(session: Session, taskId: string, responses: unknown, caller: TaskCaller): Promise<void> {
  const { run, path, producer: p } = await producerOfTask(session, taskId);
  const asked = decisionOf(responses);
  // Keys it never asked, and a proposal decided already: ignored, as the extension says.
  if (!asked || p.state !== "proposed") return;
  if (!caller.mayDecide) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Only a person (or an admin) decides a proposal: ${path} waits for one`);
  const answer = answerOf(asked.response);
  if (!answer) return;
  try {
    await decide(session, { run, path }, answer, asked.revision);
  } catch (error) {
    // Facts that changed since (nothing ran): the task asks again, under the new revision's key (tasks/get).
    if (factsChanged(error)) return;
    if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) throw error;
  }
}

/** tasks/cancel: a waiting proposal is withdrawn, a running command cancelled; one that ended stays as it ended. */
export async function cancelTask(session: Session, taskId: string): Promise<void> {
  const { run, path, producer: p } = await producerOfTask(session, taskId);
  try {
    if (p.state === "proposed") await session.client.call("run/resolve", { run, path, decision: "reject", reason: TASK_CANCEL_REASON });
    else if (p.state === "accepted" || p.state === "running") await session.client.call("stream/cancel", { run, path, reason: TASK_CANCEL_REASON });
  } catch (error) {
    if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) throw error;
  }
}
