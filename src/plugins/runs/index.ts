import { runCreate } from "../../methods/run/create.js";
import { runGet } from "../../methods/run/get.js";
import { runList } from "../../methods/run/list.js";
import { definePlugin } from "../plugin.js";

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
