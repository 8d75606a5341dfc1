import { definePlugin } from "../../plugins/plugin.js";
import { entryGet } from "./get.js";
import { entryList } from "./list.js";
import { entrySearch } from "./search.js";

/** Reading entries, and the `log` scheme every producer's audit record uses. */
export const entriesPlugin = definePlugin({
  name: "entries",
  dependencies: ["runs"],
  setup(app) {
    app.scheme({ name: "log", description: "Audit records: one per proposal, rewritten to a one-line summary when its producer finishes.", streamed: false });
    app.method(entryGet);
    app.method(entryList);
    app.method(entrySearch);
  },
});
