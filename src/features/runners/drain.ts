import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const runnerDrain = defineMethod({
  ...methods["runner/drain"],
  handler: async (params, ctx) => {
    const { core, connection, project } = ctx;
    const draining = params.drain ?? true;
    const result = await core.lifecycle.drain(project, params.name, draining, connection.principal);
    void core.audit.byCaller(connection, { action: "runner/drain", project: project.name, detail: { runner: params.name, draining, running: result.running } });
    return result;
  },
});
