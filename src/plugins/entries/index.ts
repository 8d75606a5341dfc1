import { definePlugin } from "../plugin.js";
import { entryGetMethod } from "./entry-get.js";
import { entryListMethod } from "./entry-list.js";

/** Reading entries, and the `log` scheme every producer's audit record uses. */
export const entriesPlugin = definePlugin({
  name: "entries",
  dependencies: ["runs"],
  setup(app) {
    app.scheme({ name: "log", description: "Audit records: one per proposal, rewritten to a one-line summary when its producer finishes.", streamed: false });
    app.method(entryGetMethod(app));
    app.method(entryListMethod(app));
  },
});
