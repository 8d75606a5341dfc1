import { z } from "zod";
import { defineMethod } from "../define.js";

export const modelList = defineMethod({
  name: "model/list",
  description:
    "The configured model aliases (SPOOL_MODEL_<alias>, the built-in demo), with provider and endpoint. Works before `initialize`: models belong to the server, not to a project.",
  access: "none",
  params: z.strictObject({}),
  result: z.object({ models: z.array(z.object({ alias: z.string(), provider: z.string(), model: z.string(), baseUrl: z.string() })) }),
  handler: (_params, ctx) => ({ models: ctx.core.config.agent.models.map(({ alias, provider, model, baseUrl }) => ({ alias, provider, model, baseUrl })) }),
});
