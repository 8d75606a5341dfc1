import { Server, type ServerCapabilities } from "@modelcontextprotocol/server";
import { instructions } from "../spool/instructions.js";
import { report } from "../spool/output.js";
import { type McpBridgeOptions, SpoolSide } from "../spool/spool-side.js";
import { registerResources } from "./resources.js";
import { registerToolCalls, SpoolTaskStore, taskRuns } from "./tasks.js";

/*
 * The server of a 2025-11-25 session (McpBridge, bridge.ts: over stdio or one Streamable HTTP session), the v2
 * SDK's Server with Spool's handlers on its public setRequestHandler: initialize, progress and elicitation over
 * the session, the tasks of 2025-11-25 (tasks.ts) and resource subscriptions (resources.ts), answering from the
 * same table of tools and the same resource functions as 2026-07-28's server (src/mcp/spool/). Nothing reaches
 * into the SDK's own members.
 */

/** The revision served with sessions (initialize). */
export const SESSION_VERSION = "2025-11-25";

/** A 2025-11-25 session's server and the Spool side its handlers work on; `resources.close` stops its subscriptions. */
export function sessionServer(options: McpBridgeOptions): { server: Server; side: SpoolSide; resources: { close(): Promise<void> } } {
  const server = new Server(
    { name: "spool", title: "Spool", version: options.version },
    {
      // Tasks (2025-11-25): run_command may run as one, and each task is a Spool producer (src/mcp/sessions/tasks.ts).
      // The capability is 2025-11-25's, which the v2 SDK's type (2026-07-28's) no longer names.
      capabilities: { tools: { listChanged: true }, logging: {}, tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } } as ServerCapabilities,
      instructions: instructions(options.where),
    },
  );
  const side = new SpoolSide(server, options);
  const store = new SpoolTaskStore({
    session: () => side.ready(),
    taskRuns: () => taskRuns(side),
    report: async (run, path, by) => report(await side.ready(), run, path, by),
  });
  registerToolCalls(server, side, store);
  return { server, side, resources: registerResources(server, side) };
}
