import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const runnerAttach = defineMethod({
  ...methods["runner/attach"],
  handler: (params, ctx) => ctx.core.lifecycle.attachRunner(ctx.connection, ctx.project, params),
});
