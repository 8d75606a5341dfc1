import { AGENT_LOOP } from "../../agent/service.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { roleAllows } from "../../protocol/roles.js";
import { conflict, SpoolError } from "../../rpc/errors.js";

export const runCreate = defineMethod({
  ...methods["run/create"],
  handler: async (params, ctx) => {
    const { core, project } = ctx;
    const agent = ctx.services.find(AGENT_LOOP);
    if (params.model !== undefined) {
      if (!agent) {
        throw new SpoolError("UNSUPPORTED", `No agent plugin is loaded, so model "${params.model}" cannot be used; create the run without a model`, {
          model: params.model,
        });
      }
      agent.checkModel(params.model);
    }
    if (params.prompt !== undefined && params.model === undefined) {
      throw new SpoolError("INVALID_PARAMS", "A prompt needs a model; create the run with `model` or without `prompt`", {
        issues: [{ path: "prompt", message: "needs model" }],
      });
    }
    if (params.alias !== undefined && (await core.runs.find(project, params.alias))) {
      throw conflict(`Run alias "${params.alias}" is already used in project "${project.name}"`, { run: params.alias });
    }
    if (params.budget && !roleAllows(ctx.connection.principal.role, "person")) {
      // Below person, a run's own budget may only be tighter than what is configured for its creator here: raising one
      // is run/budget's, a person's (an agent's run/create otherwise lifted its operator's limit on its spending).
      const defaults = core.budgets.defaults(project.name, ctx.connection.principal.name);
      const over = Object.entries(params.budget).filter(([kind, value]) => {
        const limit = defaults[kind as keyof typeof defaults];
        return limit !== undefined && value !== undefined && value > limit;
      });
      if (over.length > 0) {
        const said = over.map(([kind, value]) => `${kind} ${value} over ${defaults[kind as keyof typeof defaults]}`).join(", ");
        throw new SpoolError(
          "FORBIDDEN",
          `A ${ctx.connection.principal.role} may give a run a budget within the configured limits only (${said}): a person raises one with run/budget`,
          { limits: defaults, held: ctx.connection.principal.role, needed: "person" },
        );
      }
    }
    core.runs.rates.admit(ctx.connection.principal.name, { run: true, ...(params.prompt !== undefined && agent ? { prompt: params.prompt } : {}) });
    const alias = params.alias ?? (await core.runs.freeAlias(project));
    const row = await core.runs.create(project, {
      alias,
      model: params.model ?? null,
      mode: params.mode ?? "act",
      title: params.title ?? null,
      createdBy: ctx.connection.principal.name,
      ...(params.budget ? { budget: params.budget } : {}),
    });
    if (params.prompt === undefined || !agent) return { run: await core.runs.view(row) };
    const loop = await agent.prompt(project, row, params.prompt, params.mode ?? "act");
    return { run: await core.runs.view(await core.runs.reload(row)), loop: loop.seq };
  },
});
