import { z } from "zod";
import { defineMethod } from "../../rpc/method.js";
import type { App } from "../plugin.js";
import { Run, RunAlias } from "../schemas.js";
import { requireRun, runView } from "./run-view.js";

export function runGetMethod(app: App) {
  return defineMethod({
    name: "run/get",
    description: "One run of the caller's project.",
    params: z.strictObject({ run: RunAlias }),
    result: z.object({ run: Run }),
    handler: async (params, ctx) => ({ run: runView(await requireRun(app.store.db, ctx.project, params.run)) }),
  });
}
