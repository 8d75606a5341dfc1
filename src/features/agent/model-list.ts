import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const modelList = defineMethod({
  ...methods["model/list"],
  handler: (_params, ctx) => ({ models: ctx.core.config.agent.models.map(({ alias, provider, model, baseUrl }) => ({ alias, provider, model, baseUrl })) }),
});
