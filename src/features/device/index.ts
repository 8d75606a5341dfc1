import { definePlugin } from "../../plugins/plugin.js";
import { deviceList } from "./list.js";
import { deviceRevoke } from "./revoke.js";

/** Paired devices: `device/list`, `device/revoke` (a caller's own; an admin's, anyone's). Pairing itself is the web view's. */
export const devicesPlugin = definePlugin({
  name: "devices",
  setup(app) {
    app.method(deviceList);
    app.method(deviceRevoke);
  },
});
