import { entryGet } from "../../methods/entry/get.js";
import { entryList } from "../../methods/entry/list.js";
import { definePlugin } from "../plugin.js";

/** Reading entries, and the `log` scheme every producer's audit record uses. */
export const entriesPlugin = definePlugin({
  name: "entries",
  dependencies: ["runs"],
  setup(app) {
    app.scheme({ name: "log", description: "Audit records: one per proposal, rewritten to a one-line summary when its producer finishes.", streamed: false });
    app.method(entryGet);
    app.method(entryList);
  },
});
