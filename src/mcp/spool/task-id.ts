/*
 * A task of either revision (2025-11-25's tasks, src/mcp/sessions/tasks.ts; 2026-07-28's tasks extension,
 * src/mcp/stateless/tasks.ts) is a Spool producer: its id names the run and log path, so its state is the store's,
 * read by whichever server answers and after any restart.
 */

/** The reason a proposal withdrawn by tasks/cancel carries (read back to tell a cancel from a person's rejection). */
export const TASK_CANCEL_REASON = "task cancelled by the MCP client (tasks/cancel)";
/** How often a client should poll tasks/get (the spec's pollInterval): a person's decision takes seconds. */
export const TASK_POLL_MS = 1000;
const PREFIX = "spool-";

/** A task's id: the run and log path of its producer, opaque to the client. */
export function taskIdOf(run: string, path: string): string {
  return PREFIX + Buffer.from(JSON.stringify([run, path]), "utf8").toString("base64url");
}

/** The run and path a task id names; null for anything that is not one. */
export function parseTaskId(taskId: string): { run: string; path: string } | null {
  if (!taskId.startsWith(PREFIX) || taskId.length > 4096) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(taskId.slice(PREFIX.length), "base64url").toString("utf8"));
    if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== "string" || typeof value[1] !== "string") return null;
    if (value[0] === "" || !value[1].startsWith("log://")) return null;
    return { run: value[0], path: value[1] };
  } catch {
    return null;
  }
}
