import { methods } from "../../protocol/methods/index.js";
import { defineMethod } from "../define.js";

export const runnerAttach = defineMethod({
  ...methods["runner/attach"],
  handler: (params, ctx) => ctx.core.lifecycle.attachRunner(ctx.connection, ctx.project, params),
});
