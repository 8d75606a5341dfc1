import { z } from "zod";
import { conflict, SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../../rpc/method.js";
import { findRun, insertRun, maxRunId } from "../../store/runs.js";
import type { App } from "../plugin.js";
import { Run, RunAlias } from "../schemas.js";
import { runView } from "./run-view.js";
import type { RunAgentSlot } from "./index.js";

export const RunCreateParams = z.strictObject({
  alias: RunAlias.optional(),
  model: z.string().min(1).max(200).optional().describe("Model alias; without one the run is idle and fed by clients"),
  mode: z.enum(["ask", "act"]).optional().describe("ask: read-only tools only; act (default): all tools"),
  prompt: z.string().min(1).optional().describe("First prompt; needs a model"),
});

export function runCreateMethod(app: App, agent: RunAgentSlot) {
  return defineMethod({
    name: "run/create",
    description: "Creates a run in the caller's project. Without `model` the run is idle (status 200) and clients feed it by hand.",
    params: RunCreateParams,
    result: z.object({ run: Run }),
    handler: async (params, ctx) => {
      const db = app.store.db;
      if (params.model !== undefined) {
        if (!agent.current) {
          throw new SpoolError("UNSUPPORTED", `No agent plugin is loaded, so model "${params.model}" cannot be used; create the run without a model`, {
            model: params.model,
          });
        }
        agent.current.checkModel(params.model);
      }
      if (params.prompt !== undefined && params.model === undefined) {
        throw new SpoolError("INVALID_PARAMS", "A prompt needs a model; create the run with `model` or without `prompt`", {
          issues: [{ path: "prompt", message: "needs model" }],
        });
      }
      let alias = params.alias;
      if (alias !== undefined && (await findRun(db, ctx.project.id, alias))) {
        throw conflict(`Run alias "${alias}" is already used in project "${ctx.project.name}"`, { run: alias });
      }
      alias ??= `run-${(await maxRunId(db)) + 1}`;
      const now = Date.now();
      try {
        const row = await insertRun(db, {
          project_id: ctx.project.id,
          alias,
          model: params.model ?? null,
          mode: params.mode ?? "act",
          status: 200,
          created_at: now,
          updated_at: now,
        });
        await app.emit("run:created", { project: ctx.project, run: row });
        if (params.prompt !== undefined) {
          await agent.current!.prompt(ctx.project, row, params.prompt, params.mode ?? "act");
          return { run: runView((await findRun(db, ctx.project.id, alias)) ?? row) };
        }
        return { run: runView(row) };
      } catch (error) {
        // Two clients racing for the same alias: the UNIQUE constraint decides.
        if (error instanceof Error && /UNIQUE/.test(error.message)) throw conflict(`Run alias "${alias}" is already used`, { run: alias });
        throw error;
      }
    },
  });
}
