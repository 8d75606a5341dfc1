import { definePlugin } from "../../plugins/plugin.js";
import { notifications } from "../../protocol/notifications.js";
import { runnerAttach } from "./attach.js";
import { runnerDrain } from "./drain.js";
import { runnerList } from "./list.js";
import { runnerPools, runnerQueue } from "./pools.js";

/**
 * Runners: `runner/attach`, `runner/list`, `runner/drain`, the fleet (`runner/pools`, `runner/queue`) and the
 * `runner/exec` request. The
 * registry, dispatch and "runner lost" are the core's; the embedded local
 * runner is wired at start-up.
 */
export const runnersPlugin = definePlugin({
  name: "runners",
  dependencies: ["proposals", "stream"],
  setup(app) {
    app.notification(notifications["runner/exec"]);
    app.method(runnerAttach);
    app.method(runnerList);
    app.method(runnerDrain);
    app.method(runnerPools);
    app.method(runnerQueue);
  },
});
