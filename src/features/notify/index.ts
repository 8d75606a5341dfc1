import { definePlugin } from "../../plugins/plugin.js";
import { notifyAdd } from "./add.js";
import { notifyList } from "./list.js";
import { notifyRemove } from "./remove.js";
import { notifyTest } from "./test.js";

/** Receivers of notifications: `notify/add`, `notify/list`, `notify/remove`, `notify/test` (admin only). The outbox is the core's. */
export const notifyPlugin = definePlugin({
  name: "notify",
  setup(app) {
    app.method(notifyAdd);
    app.method(notifyList);
    app.method(notifyRemove);
    app.method(notifyTest);
  },
});
