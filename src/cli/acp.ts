import { Readable, Writable } from "node:stream";
import { parseArgs } from "node:util";
import { ndJsonStream } from "@agentclientprotocol/sdk";
import { Bridge } from "../acp/bridge.js";
import { ensureServer, locateServer } from "../acp/server.js";
import { createLogger } from "../logger.js";

export const ACP_HELP = `Usage: spool acp [--model ALIAS] [--server URL] [--home DIR]

Speaks the Agent Client Protocol (ACP v1) on stdin/stdout, so an editor that
runs ACP agents (Zed, JetBrains IDEs, Neovim and Emacs plugins) drives Spool
runs: a session is a run, a prompt is a loop, each proposal is a permission
request that any other Spool client can also answer. Logs go to stderr only.

It is a client of the Spool server of the home; when none answers it starts
one (spool serve, detached, output in $SPOOL_HOME/serve.log) that goes on
after the editor quits, with the runs.

Options:
  --model ALIAS       model of new sessions   [$SPOOL_ACP_MODEL, default: the server's first]
  --server URL        use this server (never started here)   [$SPOOL_SERVER]
  --token-file PATH   its token               [default: $SPOOL_HOME/token]
  --home DIR          Spool home              [$SPOOL_HOME, ~/.spool]
  -h, --help          show this help
`;

export async function acp(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      server: { type: "string" },
      "token-file": { type: "string" },
      home: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(ACP_HELP);
    return 0;
  }
  const log = createLogger((process.env.SPOOL_LOG as never) ?? "warn");
  // The home's configuration is read once, up front: a broken one is an error before the editor waits on us.
  const location = locateServer(values);
  const bridge = new Bridge({ server: () => ensureServer(location, log), model: values.model ?? process.env.SPOOL_ACP_MODEL, log });
  const stream = ndJsonStream(Writable.toWeb(process.stdout) as WritableStream<Uint8Array>, Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>);
  const connection = bridge.app().connect(stream);
  const stop = () => connection.close();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  await connection.closed;
  await bridge.close();
  process.off("SIGTERM", stop);
  process.off("SIGINT", stop);
  return 0;
}
