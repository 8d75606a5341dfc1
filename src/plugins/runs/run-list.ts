import { z } from "zod";
import { defineMethod } from "../../rpc/method.js";
import { listRuns } from "../../store/runs.js";
import type { App } from "../plugin.js";
import { Run, Status } from "../schemas.js";
import { runView } from "./run-view.js";

export function runListMethod(app: App) {
  return defineMethod({
    name: "run/list",
    description: "Runs of the caller's project, newest first.",
    params: z.strictObject({
      status: Status.optional(),
      limit: z.number().int().min(1).max(1000).optional().describe("At most this many (default 100)"),
    }),
    result: z.object({ runs: z.array(Run) }),
    handler: async (params, ctx) => {
      const rows = await listRuns(app.store.db, ctx.project.id, { status: params.status, limit: params.limit ?? 100 });
      return { runs: rows.map(runView) };
    },
  });
}
