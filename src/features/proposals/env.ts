import { definePlugin } from "../../plugins/plugin.js";

/** `env`: read-only commands that inspect the environment (the only tool in `ask` mode). */
export const envPlugin = definePlugin({
  name: "env",
  dependencies: ["proposals"],
  setup(app) {
    app.producer({ tool: "env", description: "read-only commands that inspect the environment", channels: { 1: "stdout", 2: "stderr" }, readOnly: true });
  },
});
