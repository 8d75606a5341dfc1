import { definePlugin } from "../plugin.js";
import { runCreateMethod } from "./run-create.js";
import { runGetMethod } from "./run-get.js";
import { runListMethod } from "./run-list.js";

/** Runs: create, get, list. The agent loop plugin drives their status later. */
export const runsPlugin = definePlugin({
  name: "runs",
  dependencies: ["session"],
  setup(app) {
    app.method(runCreateMethod(app));
    app.method(runGetMethod(app));
    app.method(runListMethod(app));
  },
});
