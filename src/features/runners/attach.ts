import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const runnerAttach = defineMethod({
  ...methods["runner/attach"],
  handler: async (params, ctx) => {
    const { core, connection, project } = ctx;
    // The default before, to record a change of it (an attach with default takes it, or is refused and changes nothing).
    const before = params.default ? (core.runners.list(project.id).find((r) => r.default)?.name ?? null) : null;
    const attached = await core.lifecycle.attachRunner(connection, project, params);
    const where = { project: project.name };
    void core.audit.byCaller(connection, {
      action: "runner/attach",
      ...where,
      detail: { name: attached.name, backend: params.backend, default: attached.default, resumed: attached.resumed.length },
    });
    if (attached.default && before !== attached.name)
      void core.audit.byCaller(connection, { action: "runner/default", ...where, detail: { runner: attached.name, before } });
    return attached;
  },
});
