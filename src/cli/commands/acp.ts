import { Readable, Writable } from "node:stream";
import { ndJsonStream } from "@agentclientprotocol/sdk";
import { Bridge } from "../../acp/bridge.js";
import { findOrStartServer, locateServer, MissingCredential } from "../../acp/server.js";
import { credentialNameError } from "../../config/settings.js";
import { createLogger } from "../../logger.js";
import { type Command, defineCommand, parseSpec, positionals, showHelp } from "../command-spec.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { ACP_ADD_SPEC } from "./client-add-spec.js";

export const ACP_SPEC = defineCommand({
  name: "acp",
  subcommands: { add: ACP_ADD_SPEC },
  usage: `spool acp [--model ALIAS] [--credential NAME] [--server URL] [--home DIR]
       spool acp add CLIENT [--project NAME] [--transport stdio|http] …   (spool acp add --help)`,
  about: `Speaks the Agent Client Protocol (ACP v1) on stdin/stdout, so an editor that
runs ACP agents (Zed, JetBrains IDEs, Neovim and Emacs plugins) drives Spool
runs: a session is a run, a prompt is a loop, each proposal is a permission
request that any other Spool client can also answer. Logs go to stderr only.

It is a client of the Spool server of the home; when none answers it starts
the home's own (spool serve --home, detached, output in $SPOOL_HOME/serve.log)
and says so on stderr (its address, the home, how to decide its proposals);
never a server of another home. It goes on after the editor quits, with the runs.

It ends when the editor closes its stdin, or on SIGTERM. SIGINT ends it only
when stdin is a terminal: an editor running it in a terminal's process group
passes on Ctrl-C, and the session/cancel that follows must still be handled.

\`spool acp add zed\` (any editor's name) makes the editor a credential of its own:
an agent's, scoped to the project, kept in the home, and prints the entry running
\`spool acp --credential NAME\` (--transport http: the /acp URL and header). With an
agent's credential the editor starts sessions and prompts, and is shown each
proposal; a person decides it elsewhere (\`spool acp add --help\`).`,
  options: {
    model: { type: "string", arg: "ALIAS", help: "model of new sessions   [$SPOOL_ACP_MODEL, default: the server's first]" },
    server: { type: "string", arg: "URL", help: "use this server (never started here)   [$SPOOL_SERVER]" },
    credential: { type: "string", arg: "NAME", help: "the credential spool acp add made for this editor, kept in\nthe home ($SPOOL_HOME/credentials/NAME)" },
    "token-file": { type: "string", arg: "PATH", help: "its token               [default: $SPOOL_HOME/token]" },
    home: { type: "string", arg: "DIR", help: "Spool home              [$SPOOL_HOME, ~/.spool]" },
  },
});

export const ACP: Command = { spec: ACP_SPEC, run: (argv) => acp(argv) };

export async function acp(argv: string[]): Promise<number> {
  // Loaded only for `add`: an editor's start of spool acp loads none of it.
  if (argv[0] === "add") return (await import("./client-add.js")).addClient("acp", argv.slice(1));
  const { values, positionals: rest } = parseSpec(ACP_SPEC, argv);
  if (values.help) return showHelp(ACP_SPEC);
  positionals("acp", rest, []);
  const log = createLogger((process.env.SPOOL_LOG as never) ?? "warn");
  // The home's configuration is read once, up front: a broken one is an error before the editor waits on us.
  if (values.credential !== undefined && values["token-file"] !== undefined) throw usageError("--credential and --token-file name two credentials: give one");
  const badName = values.credential !== undefined ? credentialNameError(values.credential) : null;
  if (badName) throw usageError(`--credential: ${badName}`);
  let location: ReturnType<typeof locateServer>;
  try {
    location = locateServer(values);
  } catch (error) {
    throw error instanceof MissingCredential ? new CliError(error.message, EXIT.connection) : error;
  }
  const bridge = new Bridge({ server: () => findOrStartServer(location, log), model: values.model ?? process.env.SPOOL_ACP_MODEL, log });
  const stream = ndJsonStream(Writable.toWeb(process.stdout) as WritableStream<Uint8Array>, Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>);
  const connection = bridge.app().connect(stream);
  const stop = () => connection.close();
  // An editor that runs the agent in a terminal's process group (acpx) passes on the person's Ctrl-C, then
  // sends session/cancel: SIGINT must not end the agent before that cancel is handled. With stdin a pipe,
  // SIGINT is noted and the agent serves on until stdin closes; typed at a terminal it ends the agent.
  const interrupt = () => {
    if (process.stdin.isTTY) stop();
    else log.info("SIGINT: spool acp goes on until its editor closes stdin (session/cancel stops a prompt)");
  };
  process.once("SIGTERM", stop);
  process.on("SIGINT", interrupt);
  await connection.closed;
  await bridge.close();
  process.off("SIGTERM", stop);
  process.off("SIGINT", interrupt);
  return 0;
}
