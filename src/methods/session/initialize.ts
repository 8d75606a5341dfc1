import { z } from "zod";
import { PROJECT_NAME, PROJECT_NAME_RULE } from "../../core/project-name.js";
import { SpoolError } from "../../rpc/errors.js";
import { PROTOCOL_VERSION, SERVER_NAME, SERVER_VERSION } from "../../version.js";
import { defineMethod } from "../define.js";

export const InitializeParams = z
  .strictObject({
    project: z.string().regex(PROJECT_NAME, PROJECT_NAME_RULE).optional().describe("Project name; without it, the project is the one rooted at `root`"),
    root: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe("Absolute path of the project's root directory: with `project`, it must match the project's root; alone, it finds the project"),
    create: z.boolean().optional().describe("Create the project when it does not exist (default true; false answers NOT_FOUND instead)"),
    client: z.strictObject({ name: z.string().max(200), version: z.string().max(100) }).optional(),
    protocolVersion: z.string().regex(/^\d+\.\d+$/, "protocolVersion looks like 1.0"),
  })
  .refine((p) => p.project !== undefined || p.root !== undefined, { message: "name a project, or its root", path: ["project"] });

export const InitializeResult = z.object({
  protocolVersion: z.string(),
  server: z.object({ name: z.string(), version: z.string() }),
  projectId: z.number().int(),
  project: z.object({ name: z.string(), root: z.string() }).describe("The project joined"),
  connectionId: z.string(),
});

export const initialize = defineMethod({
  name: "initialize",
  description:
    "Joins the connection to a project, found by name or by root (created on first use unless `create` is false). Required before every method except `ping`, `rpc.discover`, `project/list` and `model/list`.",
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
    const project = await ctx.core.sessions.openProject({ name: params.project, root: params.root, create: params.create });
    ctx.core.sessions.join(ctx.connection, project, params.client ?? null);
    return {
      protocolVersion: PROTOCOL_VERSION,
      server: { name: SERVER_NAME, version: SERVER_VERSION },
      projectId: project.id,
      project: { name: project.name, root: project.root },
      connectionId: ctx.connection.id,
    };
  },
});
