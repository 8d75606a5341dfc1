import { z } from "zod";
import { SpoolError } from "../../rpc/errors.js";
import { PROTOCOL_VERSION, SERVER_NAME, SERVER_VERSION } from "../../version.js";
import { defineMethod } from "../define.js";

export const InitializeParams = z.strictObject({
  project: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "a project name is 1-128 letters, digits, '.', '_' or '-'")
    .describe("Project name; created on first use"),
  root: z.string().min(1).optional().describe("Absolute path of the project's root directory; only used when the project is created"),
  client: z.strictObject({ name: z.string().max(200), version: z.string().max(100) }).optional(),
  protocolVersion: z.string().regex(/^\d+\.\d+$/, "protocolVersion looks like 1.0"),
});

export const InitializeResult = z.object({
  protocolVersion: z.string(),
  server: z.object({ name: z.string(), version: z.string() }),
  projectId: z.number().int(),
  connectionId: z.string(),
});

export const initialize = defineMethod({
  name: "initialize",
  description: "Joins the connection to a project (created on first use). Required before every method except `ping` and `rpc.discover`.",
  access: "none",
  params: InitializeParams,
  result: InitializeResult,
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
    const project = await ctx.core.sessions.openProject(params.project, params.root);
    ctx.core.sessions.join(ctx.connection, project, params.client ?? null);
    return {
      protocolVersion: PROTOCOL_VERSION,
      server: { name: SERVER_NAME, version: SERVER_VERSION },
      projectId: project.id,
      connectionId: ctx.connection.id,
    };
  },
});
