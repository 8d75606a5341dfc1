import { definePlugin } from "../plugin.js";
import { PRODUCERS_SERVICE, type ProducerRegistry } from "../proposals/producer.js";

/** `sh`: shell commands that may change things; stdout on channel 1, stderr on 2. */
export const shPlugin = definePlugin({
  name: "sh",
  dependencies: ["proposals"],
  setup(app) {
    app.use<ProducerRegistry>(PRODUCERS_SERVICE).register(app, {
      tool: "sh",
      description: "shell commands with side effects",
      channels: { 1: "stdout", 2: "stderr" },
      readOnly: false,
    });
  },
});
