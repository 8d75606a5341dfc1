import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const ping = defineMethod({
  ...methods.ping,
  handler: () => ({ pong: true as const, time: Date.now() }),
});
