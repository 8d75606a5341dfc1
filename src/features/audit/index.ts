import { definePlugin } from "../../plugins/plugin.js";
import { auditList } from "./list.js";

/** The audit trail: `audit/list` (admin only). What it records is written by the core (src/core/activity/audit.ts). */
export const auditPlugin = definePlugin({
  name: "audit",
  setup(app) {
    app.method(auditList);
  },
});
