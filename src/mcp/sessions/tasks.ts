import { setTimeout as sleep } from "node:timers/promises";
import {
  type CallToolResult,
  ProtocolError,
  ProtocolErrorCode,
  RELATED_TASK_META_KEY,
  type Result,
  type Server,
  type Task,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import type { SpoolClient } from "../../client/spool-client.js";
import { SpoolRpcError } from "../../client/spool-client.js";
import type { Producer } from "../../protocol/views.js";
import { producerOf } from "../../protocol/views.js";
import { propose } from "../spool/run-command.js";
import { extraOf, type SpoolSide } from "../spool/spool-side.js";
import { parseTaskId, TASK_CANCEL_REASON, TASK_POLL_MS, taskIdOf } from "../spool/task-id.js";
import { RunCommandArgs } from "../spool/tool-schemas.js";
import { callTool, isTool, listTools } from "../spool/tools.js";

/*
 * MCP tasks (protocol 2025-11-25) over Spool's own store. A task is a Spool producer: its id names the run and
 * the log path, so everything else (its state, its result, its cancellation) is read from or sent to the Spool
 * server, which keeps producers across the MCP client's disconnect and its own restarts. Nothing is held here.
 * The v2 SDK keeps 2025-11-25's task vocabulary but no runtime for it: tasks/get, tasks/result, tasks/list and
 * tasks/cancel are answered here (registerTaskMethods), as the v1 SDK's TaskStore-backed handlers answered them.
 */

/** What the task store needs of the bridge: its Spool connection, and a finished command's result. */
export interface TaskHost {
  /** The Spool connection (opened on first use) and this MCP session's run, if it has one yet. */
  session(): Promise<{ client: SpoolClient; run: string | null }>;
  /** The runs whose tasks tasks/list shows (this client's, in its project), newest first. */
  taskRuns(): Promise<{ alias: string; createdAt: number; updatedAt: number }[]>;
  /** A command's result as run_command returns it (how it ended, its output as the model sees it). */
  report(run: string, path: string, by: string | null): Promise<CallToolResult>;
}

/** tasks/list's page size. */
const PAGE = 50;

/** A producer's task status and the message that goes with it (who must act, how it ended). */
export function taskStatusOf(p: Producer): { status: Task["status"]; statusMessage: string } {
  switch (p.state) {
    case "proposed":
      // The requestor cannot answer it (decisions come from people's clients), so it is working, and says on whom it waits.
      return { status: "working", statusMessage: `waiting for a person to approve or reject it (the Spool web view, spool approve, an editor): ${p.path}` };
    case "queued":
      return {
        status: "working",
        statusMessage: `accepted; waiting in ${p.pool ? `pool ${p.pool.name}` : `runner ${p.runner ?? "?"}`}'s queue for a free runner`,
      };
    case "accepted":
    case "running":
      return { status: "working", statusMessage: `running${p.runner ? ` on ${p.runner}` : ""}` };
    case "done":
    case "failed":
      return {
        status: "completed",
        statusMessage: p.signal ? `killed by ${p.signal}` : `exit ${p.exitCode === null ? "unknown" : String(p.exitCode)}`,
      };
    case "cancelled":
      return { status: "cancelled", statusMessage: `cancelled${p.cancelledBy ? ` by ${p.cancelledBy}` : ""}${p.reason ? `: ${p.reason}` : ""}` };
    case "aborted":
      return { status: "failed", statusMessage: `aborted${p.reason ? `: ${p.reason}` : ""}` };
    case "rejected":
      return p.reason === TASK_CANCEL_REASON
        ? { status: "cancelled", statusMessage: "withdrawn before a decision (tasks/cancel); it did not run" }
        : { status: "failed", statusMessage: `rejected by ${p.resolvedBy ?? "someone"}${p.reason ? `: ${p.reason}` : ""}; it did not run` };
  }
}

/** The task store of a 2025-11-25 session, each task a Spool producer read through the bridge's Spool connection. */
export class SpoolTaskStore {
  constructor(private readonly host: TaskHost) {}

  /** Called by run_command once its proposal exists: the task is that producer. */
  async createTask(run: string, path: string): Promise<Task> {
    const task = await this.getTask(taskIdOf(run, path));
    if (!task) throw new Error(`no command ${path} in run ${run}`);
    return task;
  }

  async getTask(taskId: string): Promise<Task | null> {
    const found = await this.#producer(taskId);
    if (!found) return null;
    return this.#task(taskId, found.producer, found.times);
  }

  async getTaskResult(taskId: string): Promise<Result> {
    const found = await this.#producer(taskId);
    if (!found) throw new Error(`no task ${taskId}`);
    const { run, path, producer: p } = found;
    if (p.state === "rejected") {
      const why =
        p.reason === TASK_CANCEL_REASON
          ? "Withdrawn before a decision (tasks/cancel)"
          : `Rejected by ${p.resolvedBy ?? "someone"}${p.reason ? `: ${p.reason}` : ""}`;
      return { content: [{ type: "text", text: `${why}. The command did not run.\n$ ${p.command}\n(${path})` }], isError: true };
    }
    const by = p.resolvedBy ? `accepted by ${p.resolvedBy}${p.runner ? `, ran on ${p.runner}` : ""}` : null;
    return this.host.report(run, path, by);
  }

  /** Only `cancelled` acts: a proposal still waiting is withdrawn, a running command is cancelled (its process killed). */
  async cancelTask(taskId: string): Promise<void> {
    const found = await this.#producer(taskId);
    if (!found) throw new Error(`no task ${taskId}`);
    const { client } = await this.host.session();
    const { run, path, producer: p } = found;
    try {
      if (p.state === "proposed") await client.call("run/resolve", { run, path, decision: "reject", reason: TASK_CANCEL_REASON });
      else await client.call("stream/cancel", { run, path, reason: TASK_CANCEL_REASON });
    } catch (error) {
      // Decided or ended meanwhile: the task shows how.
      if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) throw error;
    }
  }

  async listTasks(cursor?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
    const start = cursor === undefined ? 0 : Number(cursor);
    if (!Number.isInteger(start) || start < 0) throw new Error(`not a tasks/list cursor: ${cursor}`);
    const { client } = await this.host.session();
    const tasks: Task[] = [];
    for (const run of await this.host.taskRuns()) {
      const { entries } = await client.call("entry/list", { run: run.alias, pattern: "log://*" });
      for (const e of [...entries].reverse()) {
        if (e.producer) tasks.push(this.#task(taskIdOf(run.alias, e.path), e.producer, run));
      }
      if (tasks.length > start + PAGE) break;
    }
    const page = tasks.slice(start, start + PAGE);
    return { tasks: page, ...(tasks.length > start + PAGE ? { nextCursor: String(start + PAGE) } : {}) };
  }

  #task(taskId: string, p: Producer, times: { createdAt: number; updatedAt: number }): Task {
    return {
      taskId,
      ...taskStatusOf(p),
      // Kept as long as the run is: Spool's store decides when a run goes.
      ttl: null,
      // Entries carry no clock of their own on the wire: the run's is the nearest (its start, its last change).
      createdAt: new Date(times.createdAt).toISOString(),
      lastUpdatedAt: new Date(Math.max(times.updatedAt, times.createdAt)).toISOString(),
      pollInterval: TASK_POLL_MS,
    };
  }

  async #producer(taskId: string): Promise<{ run: string; path: string; producer: Producer; times: { createdAt: number; updatedAt: number } } | null> {
    const id = parseTaskId(taskId);
    if (!id) return null;
    const { client } = await this.host.session();
    try {
      const [log, { run }] = await Promise.all([client.call("entry/get", { ...id, limit: 1 }), client.call("run/get", { run: id.run })]);
      if (!log.producer) return null;
      return { ...id, producer: producerOf(log), times: run };
    } catch (error) {
      if (error instanceof SpoolRpcError && (error.errorCode === "NOT_FOUND" || error.errorCode === "INVALID_PARAMS")) return null;
      throw error;
    }
  }
}

/**
 * The tools on a 2025-11-25 session's server (bridge.ts), from the one table both revisions use (src/mcp/spool/tools.ts):
 * tools/list says run_command may run as a task, and a tools/call with `task` makes only the proposal and answers
 * at once with the task, which is that producer (SpoolTaskStore, above): it waits for a person, runs and ends in
 * Spool whether or not this client stays. A plain call stays the call it was (progress, cancel by notification).
 */
export function registerToolCalls(server: Server, side: SpoolSide, store: SpoolTaskStore): void {
  const invalid = (text: string) => new ProtocolError(ProtocolErrorCode.InvalidParams, text);
  server.setRequestHandler("tools/list", async () => listTools(true, side.options.extras) as never);
  server.setRequestHandler("tools/call", async (request, ctx) => {
    const { name, arguments: args, task } = request.params as typeof request.params & { task?: unknown };
    // A tool Spool does not offer is a protocol error (the spec's -32602), not a result the model reads as the tool's.
    if (!isTool(name, side.options.extras)) throw invalid(`Unknown tool: ${name} (tools/list names the tools)`);
    const extra = extraOf(ctx);
    if (name !== "run_command" || !task) return (await callTool(side, name, args, extra)) as never;
    const parsed = z
      .object(RunCommandArgs)
      .strict()
      .safeParse(args ?? {});
    if (!parsed.success) throw invalid(`run_command: ${parsed.error.issues.map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`).join("; ")}`);
    const session = await side.ready();
    const proposed = await propose(side, parsed.data, session, request.params, extra);
    // Refused before anything was proposed: there is no task, the refusal is the error.
    if ("content" in proposed) throw invalid(proposed.content.map((c) => (c.type === "text" ? c.text : "")).join("\n"));
    const created = await store.createTask(proposed.run, proposed.path);
    // The v2 SDK checks a tools/call result and wants content beside a task; the task is what a 2025-11-25 client reads.
    const content = [{ type: "text" as const, text: `task ${created.taskId}: ${created.statusMessage ?? created.status}` }];
    return { task: created, content } as never;
  });
  registerTaskMethods(server, store);
}

const TERMINAL = new Set<Task["status"]>(["completed", "failed", "cancelled"]);

/** tasks/get, tasks/result (which waits for the end), tasks/list and tasks/cancel, as 2025-11-25 defines them. */
function registerTaskMethods(server: Server, store: SpoolTaskStore): void {
  const params = z.looseObject({ taskId: z.string() });
  const anyResult = z.looseObject({});
  const known = async (taskId: string, what = "Task not found") => {
    const task = await store.getTask(taskId);
    if (!task) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `${what}: ${taskId}`);
    return task;
  };
  server.setRequestHandler("tasks/get", { params, result: anyResult }, async ({ taskId }) => ({
    ...(await known(taskId, "Failed to retrieve task: Task not found")),
  }));
  server.setRequestHandler("tasks/result", { params, result: anyResult }, async ({ taskId }, ctx) => {
    // Blocks until the task ends (a person decides, the command runs), polling Spool's store at the task's interval.
    while (!TERMINAL.has((await known(taskId)).status)) await sleep(TASK_POLL_MS, undefined, { signal: ctx.mcpReq.signal });
    const result = await store.getTaskResult(taskId);
    return { ...result, _meta: { ...result._meta, [RELATED_TASK_META_KEY]: { taskId } } };
  });
  server.setRequestHandler("tasks/list", { params: z.looseObject({ cursor: z.string().optional() }), result: anyResult }, async ({ cursor }) => {
    try {
      return { ...(await store.listTasks(cursor)), _meta: {} };
    } catch (error) {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Failed to list tasks: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  server.setRequestHandler("tasks/cancel", { params, result: anyResult }, async ({ taskId }) => {
    const task = await known(taskId);
    if (TERMINAL.has(task.status)) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Cannot cancel task in terminal status: ${task.status}`);
    await store.cancelTask(taskId);
    return { _meta: {}, ...(await known(taskId, "Task not found after cancellation")) };
  });
}

/** The runs tasks/list shows: this client's (by its name, as its runs are titled) in the project, and this session's. */
export async function taskRuns(side: SpoolSide): Promise<{ alias: string; createdAt: number; updatedAt: number }[]> {
  const session = await side.ready();
  const { runs } = await session.client.call("run/list", { limit: 100 });
  return runs.filter((r) => r.alias === session.run || r.title === session.who);
}
