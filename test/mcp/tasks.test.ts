import { describe, expect, it } from "vitest";
import { taskStatusOf } from "../../src/mcp/sessions/tasks.js";
import { parseTaskId, TASK_CANCEL_REASON, taskIdOf } from "../../src/mcp/spool/task-id.js";
import type { Producer } from "../../src/protocol/views.js";

/** A producer with only the fields the task status reads (the rest do not matter to it). */
const producer = (fields: Partial<Producer>): Producer =>
  ({
    path: "log://turn_1/sh/x",
    state: "proposed",
    runner: null,
    signal: null,
    exitCode: null,
    cancelledBy: null,
    reason: null,
    resolvedBy: null,
    ...fields,
  }) as Producer;

describe("MCP tasks over Spool producers", () => {
  it("a task id names a run and a log path and nothing else; anything else is no task", () => {
    const id = taskIdOf("run-1", "log://turn_2/sh/ls");
    expect(parseTaskId(id)).toEqual({ run: "run-1", path: "log://turn_2/sh/ls" });
    for (const bad of [
      "",
      "run-1",
      "spool-",
      "spool-!!",
      taskIdOf("", "log://x"),
      taskIdOf("run-1", "sh://turn_1/x_1"),
      `spool-${Buffer.from('["a"]').toString("base64url")}`,
    ])
      expect(parseTaskId(bad), bad).toBeNull();
    expect(parseTaskId(`spool-${"A".repeat(5000)}`)).toBeNull();
  });

  it("maps each producer state to the task status the spec names, with who must act or how it ended", () => {
    expect(taskStatusOf(producer({ state: "proposed" }))).toMatchObject({ status: "working", statusMessage: expect.stringContaining("waiting for a person") });
    expect(taskStatusOf(producer({ state: "running", runner: "box" }))).toEqual({ status: "working", statusMessage: "running on box" });
    expect(taskStatusOf(producer({ state: "done", exitCode: 0 }))).toEqual({ status: "completed", statusMessage: "exit 0" });
    expect(taskStatusOf(producer({ state: "failed", exitCode: 2 }))).toEqual({ status: "completed", statusMessage: "exit 2" });
    expect(taskStatusOf(producer({ state: "failed", signal: "SIGKILL" }))).toEqual({ status: "completed", statusMessage: "killed by SIGKILL" });
    expect(taskStatusOf(producer({ state: "cancelled", cancelledBy: "web view", reason: "too long" }))).toEqual({
      status: "cancelled",
      statusMessage: "cancelled by web view: too long",
    });
    expect(taskStatusOf(producer({ state: "aborted", reason: "runner lost" }))).toEqual({ status: "failed", statusMessage: "aborted: runner lost" });
    expect(taskStatusOf(producer({ state: "rejected", resolvedBy: "ana", reason: "no" }))).toMatchObject({
      status: "failed",
      statusMessage: expect.stringContaining("rejected by ana: no"),
    });
    expect(taskStatusOf(producer({ state: "rejected", reason: TASK_CANCEL_REASON }))).toMatchObject({ status: "cancelled" });
  });
});
