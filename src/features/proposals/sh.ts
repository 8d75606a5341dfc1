import { definePlugin } from "../../plugins/plugin.js";

/** `sh`: shell commands that may change things; stdout on channel 1, stderr on 2. */
export const shPlugin = definePlugin({
  name: "sh",
  dependencies: ["proposals"],
  setup(app) {
    app.producer({ tool: "sh", description: "shell commands with side effects", channels: { 1: "stdout", 2: "stderr" }, readOnly: false });
  },
});
