import { z } from "zod";
import { request } from "../define.js";

export const modelList = request({
  name: "model/list",
  role: "viewer",
  description:
    "The configured model aliases (SPOOL_MODEL_<alias>, the built-in demo), with provider and endpoint. Works before `initialize`: models belong to the server, not to a project.",
  access: "none",
  params: z.strictObject({}),
  result: z.object({ models: z.array(z.object({ alias: z.string(), provider: z.string(), model: z.string(), baseUrl: z.string() })) }),
});
