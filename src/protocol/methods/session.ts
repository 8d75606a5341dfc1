import { z } from "zod";
import { Traceparent } from "../common.js";
import { request } from "../define.js";
import { PROJECT_NAME, PROJECT_NAME_RULE } from "../project-name.js";
import { PrincipalRef, RoleName } from "../role-schemas.js";

export const ping = request({
  name: "ping",
  role: "runner",
  description: "Liveness check; works before `initialize`.",
  access: "none",
  params: z.strictObject({}),
  result: z.object({ pong: z.literal(true), time: z.number().int().describe("Server time, ms since the epoch") }),
});

export const InitializeParams = z
  .strictObject({
    project: z.string().regex(PROJECT_NAME, PROJECT_NAME_RULE).optional().describe("Project name; without it, the project is the one rooted at `root`"),
    root: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe("Absolute path of the project's root directory: with `project`, it must match the project's root; alone, it finds the project"),
    create: z
      .boolean()
      .optional()
      .describe(
        "Create the project when it does not exist (default true; false answers NOT_FOUND instead). Only with `root`: a name alone never creates one (NOT_FOUND naming the projects there are)",
      ),
    client: z.strictObject({ name: z.string().max(200), version: z.string().max(100) }).optional(),
    protocolVersion: z.string().regex(/^\d+\.\d+$/, "protocolVersion looks like 1.0"),
    role: RoleName.optional().describe(
      "Act with at most this role on this connection (e.g. `spool mcp` asks for agent); more than the credential holds is FORBIDDEN",
    ),
    traceparent: Traceparent.optional().describe(
      "The caller's W3C trace context: the traces of the proposals this connection makes continue it (a proposal's own traceparent wins)",
    ),
  })
  .refine((p) => p.project !== undefined || p.root !== undefined, { message: "name a project, or its root", path: ["project"] });

/** What `initialize` answers about binary frames (src/protocol/binary-frame.ts has the layout). */
export const BinaryFramesInfo = z
  .object({
    version: z.number().int().describe("The frame layout's version (1)"),
    methods: z.record(z.string(), z.string()).describe("Methods that take a binary frame, each with the params field its raw bytes fill"),
  })
  .describe("Binary frames this server takes over WebSocket (SPEC §1 Binary frames)");

export const InitializeResult = z.object({
  protocolVersion: z.string(),
  server: z.object({
    name: z.string(),
    version: z.string(),
    url: z
      .string()
      .optional()
      .describe(
        "The WebSocket address the server listens on over TCP, with its real port (what `spool serve --port` chose, or the system for port 0); a client that came by the Unix socket learns it here",
      ),
  }),
  projectId: z.number().int(),
  project: z.object({ name: z.string(), root: z.string() }).describe("The project joined"),
  connectionId: z.string(),
  binaryFrames: BinaryFramesInfo.optional().describe("Binary frames this server takes over WebSocket; absent on servers that take JSON text only"),
  principal: PrincipalRef.optional().describe("Who this connection acts as: its credential's principal, with the role it acts with"),
});

export const initialize = request({
  name: "initialize",
  role: "runner",
  description:
    "Joins the connection to a project, found by name or by root (created on first use with the `root` given unless `create` is false; a name alone that no project has is NOT_FOUND, its data naming the projects the caller may join). Required before every method except `ping`, `rpc.discover`, `project/list` and `model/list`.",
  access: "none",
  params: InitializeParams,
  result: InitializeResult,
});
