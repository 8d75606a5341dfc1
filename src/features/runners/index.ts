import { definePlugin } from "../../plugins/plugin.js";
import { notifications } from "../../protocol/notifications.js";
import { runnerAttach } from "./attach.js";
import { runnerList } from "./list.js";

/**
 * Runners: `runner/attach`, `runner/list` and the `runner/exec` request. The
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
  },
});
