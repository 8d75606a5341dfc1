import { runnerAttach } from "../../methods/runner/attach.js";
import { runnerList } from "../../methods/runner/list.js";
import { RunnerExecParams, RunnerExecResult } from "../../runners/protocol.js";
import { definePlugin } from "../plugin.js";

/**
 * Runners: `runner/attach`, `runner/list` and the `runner/exec` request. The
 * registry, dispatch and "runner lost" are the core's; the embedded local
 * runner is wired at start-up.
 */
export const runnersPlugin = definePlugin({
  name: "runners",
  dependencies: ["proposals", "stream"],
  setup(app) {
    app.notification({
      name: "runner/exec",
      description:
        "Asks the runner to execute an accepted proposal it now owns: stream stdout and stderr into `channels` with seq, then stream/completed or stream/aborted. The reply comes once the process has started (or failed to).",
      direction: "server",
      params: RunnerExecParams,
      reply: RunnerExecResult,
    });
    app.method(runnerAttach);
    app.method(runnerList);
  },
});
