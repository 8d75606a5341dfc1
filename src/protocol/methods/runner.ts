import { z } from "zod";
import { request } from "../define.js";
import { RunnerAttachParams, RunnerAttachResult, RunnerInfo } from "../runner.js";

export const runnerAttach = request({
  name: "runner/attach",
  role: "runner",
  description:
    "Turns this connection into a runner of the project and returns its resume token. After a reconnect the runner attaches again with `resumeToken` and `resume` (the producers it still executes); the reply says which are still open (with their last stored seq per channel) and which were finished meanwhile.",
  params: RunnerAttachParams,
  result: RunnerAttachResult,
});

export const runnerList = request({
  name: "runner/list",
  role: "viewer",
  description:
    "The project's runners: attached ones, ones that went away while they had work (`disconnected`, their name held for them until `heldUntil`), and the embedded local runner when the server runs one. Each entry's `sandbox.modes` lists the sandbox modes (read-only, workspace-write, full) it can run a command in.",
  params: z.strictObject({}),
  result: z.object({ runners: z.array(RunnerInfo) }),
});
