import { CONNECTION_TRACEPARENT } from "../../core/observer.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { SpoolError } from "../../rpc/errors.js";
import { PROTOCOL_VERSION, SERVER_NAME, SERVER_VERSION } from "../../version.js";
import { BINARY_FRAMES } from "./discover.js";

export const initialize = defineMethod({
  ...methods.initialize,
  handler: async (params, ctx) => {
    if (ctx.connection.project) {
      throw new SpoolError("ALREADY_INITIALIZED", `This connection is already initialized for project "${ctx.connection.project.name}"`);
    }
    const [major] = params.protocolVersion.split(".");
    if (major !== PROTOCOL_VERSION.split(".")[0]) {
      throw new SpoolError("UNSUPPORTED", `Protocol version ${params.protocolVersion} is not supported; this server speaks ${PROTOCOL_VERSION}`, {
        supported: PROTOCOL_VERSION,
      });
    }
    const project = await ctx.core.sessions.openProject({ name: params.project, root: params.root, create: params.create });
    ctx.core.sessions.join(ctx.connection, project, params.client ?? null);
    if (params.traceparent) ctx.connection.state.set(CONNECTION_TRACEPARENT, params.traceparent);
    return {
      protocolVersion: PROTOCOL_VERSION,
      server: { name: SERVER_NAME, version: SERVER_VERSION },
      projectId: project.id,
      project: { name: project.name, root: project.root },
      connectionId: ctx.connection.id,
      binaryFrames: ctx.services.use(BINARY_FRAMES)(),
    };
  },
});
