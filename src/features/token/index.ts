import { definePlugin } from "../../plugins/plugin.js";
import { tokenCreate } from "./create.js";
import { tokenList } from "./list.js";
import { tokenRevoke } from "./revoke.js";

/** Principals: `token/create`, `token/list`, `token/revoke` (admin only). Authentication at the upgrade is the server's. */
export const principalsPlugin = definePlugin({
  name: "principals",
  setup(app) {
    app.method(tokenCreate);
    app.method(tokenList);
    app.method(tokenRevoke);
  },
});
