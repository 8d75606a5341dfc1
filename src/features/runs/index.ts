import { definePlugin } from "../../plugins/plugin.js";
import { runCreate } from "./create.js";
import { runGet } from "./get.js";
import { runList } from "./list.js";

/** Runs: create, get, list. The agent loop plugin drives their status. */
export const runsPlugin = definePlugin({
  name: "runs",
  dependencies: ["session"],
  setup(app) {
    app.method(runCreate);
    app.method(runGet);
    app.method(runList);
  },
});
