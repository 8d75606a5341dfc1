import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CallToolResultV2Schema,
  CancelTaskResultV2Schema,
  CreateTaskResultV2Schema,
  DetailedTaskV2Schema,
  GetTaskResultV2Schema,
  ServerTaskCapabilityEnvelopeV2Schema,
  UpdateTaskResultV2Schema,
} from "@modelcontextprotocol/ext-tasks/core/v2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";
import { modern, TASKS } from "./modern-harness.js";

/*
 * Issue 47: Spool's tasks over MCP 2026-07-28 (src/mcp/stateless/tasks.ts, written by hand: the v2 SDK has no task
 * runtime) checked against software we did not write: the tasks extension's own wire schemas,
 * @modelcontextprotocol/ext-tasks's core/v2 (CreateTaskResultV2Schema for the tools/call answer,
 * GetTaskResultV2Schema and DetailedTaskV2Schema for tasks/get in each state, UpdateTaskResultV2Schema and
 * CancelTaskResultV2Schema), over real HTTP to a `spool serve` subprocess.
 */

/** The schema's complaints about a value (none: it conforms), as path and message (a union's, each branch's), so a failure says what is wrong. */
function issues(schema: z.ZodType, value: unknown): string[] {
  const parsed = schema.safeParse(value);
  if (parsed.success) return [];
  const said = (list: z.core.$ZodIssue[], at: PropertyKey[] = []): string[] =>
    list.flatMap((i) => {
      const path = [...at, ...i.path];
      return i.code === "invalid_union" && i.errors.length > 0
        ? i.errors.flatMap((branch, n) => said(branch, [...path, `|${n}`]))
        : [`${path.map(String).join(".") || "(root)"}: ${i.message}`];
    });
  return said(parsed.error.issues);
}

describe("Spool's 2026-07-28 tasks against @modelcontextprotocol/ext-tasks's core/v2 schemas", () => {
  let home: string;
  let project: string;
  let port: number;
  let server: ServeProcess;
  const tokens: Record<string, string> = {};
  const url = () => `http://127.0.0.1:${port}/mcp?root=${encodeURIComponent(project)}`;
  const withTasks = { extensions: { [TASKS]: {} }, elicitation: { form: {} } };
  const as = (name: string) => ({ token: tokens[name]!, capabilities: withTasks, client: "schemas" });
  const get = async (taskId: string, who = "robot") => (await modern(url(), "tasks/get", { taskId }, as(who))).body;
  /** tasks/get's answer once the task is completed. */
  const completed = async (taskId: string, what: string): Promise<Record<string, unknown>> => {
    let done: Record<string, unknown> = {};
    await eventually(
      async () => {
        done = (await get(taskId)).result ?? {};
        return done.status === "completed";
      },
      30_000,
      what,
    );
    return done;
  };

  beforeAll(async () => {
    home = tempDir("spool-mcp-ext-tasks-home-");
    project = join(tempDir("spool-mcp-ext-tasks-"), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
    port = await freePort();
    server = await spawnServe(["--port", String(port), "--home", home]);
    const admin = readFileSync(join(home, "token"), "utf8").trim();
    const client = await SpoolClient.connect(server.url, { token: admin });
    try {
      await client.initialize(undefined, { root: project });
      for (const [name, role] of [
        ["alice", "person"],
        ["robot", "agent"],
      ] as const)
        tokens[name] = (await client.call("token/create", { name, role } as never)).token as string;
    } finally {
      client.close();
    }
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("server/discover's capabilities are a server task capability envelope naming the extension", async () => {
    const found = await modern(url(), "server/discover", {}, as("robot"));
    const capabilities = found.body.result!.capabilities;
    expect(issues(ServerTaskCapabilityEnvelopeV2Schema, capabilities)).toEqual([]);
    expect((capabilities as { extensions: object }).extensions).toHaveProperty(TASKS);
  });

  it("a task from creation to its result: the tools/call answer, tasks/get working, input_required and completed, tasks/update's answer", async () => {
    const created = await modern(url(), "tools/call", { name: "run_command", arguments: { command: "echo schema-checked" } }, as("robot"));
    expect(created.status).toBe(200);
    const task = created.body.result!;
    expect(issues(CreateTaskResultV2Schema, task)).toEqual([]);
    expect(task).toMatchObject({ resultType: "task", status: "working" });
    const taskId = String(task.taskId);

    // Working (an agent's view: it waits for a person).
    const working = await get(taskId);
    expect(issues(GetTaskResultV2Schema, working.result)).toEqual([]);
    expect(issues(DetailedTaskV2Schema, working.result)).toEqual([]);
    expect(working.result?.status).toBe("working");

    // input_required (a person's view, whose client elicits): the approval as an elicitation/create input request.
    const asked = await get(taskId, "alice");
    expect(issues(GetTaskResultV2Schema, asked.result)).toEqual([]);
    expect(issues(DetailedTaskV2Schema, asked.result)).toEqual([]);
    expect(asked.result?.status).toBe("input_required");

    const updated = await modern(
      url(),
      "tasks/update",
      { taskId, inputResponses: { decision: { action: "accept", content: { decision: "accept" } } } },
      as("alice"),
    );
    expect(issues(UpdateTaskResultV2Schema, updated.body.result)).toEqual([]);

    const done = await completed(taskId, "the task to complete");
    expect(issues(GetTaskResultV2Schema, done)).toEqual([]);
    expect(issues(DetailedTaskV2Schema, done)).toEqual([]);
    // Its result is the synchronous call's: a complete CallToolResult.
    expect(issues(CallToolResultV2Schema, done.result)).toEqual([]);
  }, 60_000);

  it("tasks/cancel's answer, and the cancelled task tasks/get then gives", async () => {
    const created = await modern(url(), "tools/call", { name: "run_command", arguments: { command: "echo never-runs" } }, as("robot"));
    const taskId = String(created.body.result!.taskId);
    const cancelled = await modern(url(), "tasks/cancel", { taskId }, as("robot"));
    expect(issues(CancelTaskResultV2Schema, cancelled.body.result)).toEqual([]);
    const after = await get(taskId);
    expect(issues(GetTaskResultV2Schema, after.result)).toEqual([]);
    expect(issues(DetailedTaskV2Schema, after.result)).toEqual([]);
    expect(after.result?.status).toBe("cancelled");
  }, 60_000);

  /** A task of the agent's that alice rejects, once completed. */
  async function rejected(): Promise<Record<string, unknown>> {
    const created = await modern(url(), "tools/call", { name: "run_command", arguments: { command: "echo rejected" } }, as("robot"));
    const taskId = String(created.body.result!.taskId);
    await modern(url(), "tasks/update", { taskId, inputResponses: { decision: { action: "decline" } } }, as("alice"));
    return completed(taskId, "the rejected task to complete");
  }

  it("a task a person rejects: completed, its result an error CallToolResult", async () => {
    const done = await rejected();
    expect(issues(GetTaskResultV2Schema, done)).toEqual([]);
    expect(issues(DetailedTaskV2Schema, done)).toEqual([]);
    expect((done.result as { isError?: boolean }).isError).toBe(true);
    // The schemas found this one: a rejected task's result lacked resultType "complete" (src/mcp/stateless/tasks.ts's
    // "rejected" case; its ended case had it).
    expect(issues(CallToolResultV2Schema, done.result)).toEqual([]);
  }, 60_000);
});
