import { methods } from "../../protocol/methods/index.js";
import { defineMethod } from "../define.js";

export const ping = defineMethod({
  ...methods.ping,
  handler: () => ({ pong: true as const, time: Date.now() }),
});
