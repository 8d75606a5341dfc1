import { RunnerAttachParams, RunnerAttachResult } from "../../runners/protocol.js";
import { defineMethod } from "../define.js";

export const runnerAttach = defineMethod({
  name: "runner/attach",
  description:
    "Turns this connection into a runner of the project and returns its resume token. After a reconnect the runner attaches again with `resumeToken` and `resume` (the producers it still executes); the reply says which are still open (with their last stored seq per channel) and which were finished meanwhile.",
  params: RunnerAttachParams,
  result: RunnerAttachResult,
  handler: (params, ctx) => ctx.core.lifecycle.attachRunner(ctx.connection, ctx.project, params),
});
