import { statSync } from "node:fs";
import { resolve } from "node:path";
import { ensureServer, locateServer, MissingCredential } from "../../acp/server.js";
import { credentialNameError } from "../../config/settings.js";
import { createLogger } from "../../logger.js";
import { spoolMcp } from "../../mcp/stdio.js";
import { SERVER_VERSION } from "../../version.js";
import { type Command, defineCommand, parseSpec, positionals, showHelp } from "../command-spec.js";
import { workingDirectory } from "../common.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { findProject } from "../project.js";
import { MCP_ADD_SPEC } from "./client-add-spec.js";

export const MCP_SPEC = defineCommand({
  name: "mcp",
  subcommands: { add: MCP_ADD_SPEC },
  usage: `spool mcp [--project DIR] [--credential NAME] [--runner NAME] [--mode ask|act] [--role agent|person] [--server URL] [--home DIR]
       spool mcp add CLIENT [--project NAME] [--transport stdio|http] …   (spool mcp add --help)`,
  about: `A Model Context Protocol server on stdin/stdout, so any MCP agent (Claude Code,
Codex CLI, Cursor, Claude Desktop, …) runs its shell commands through Spool:
each run_command is a proposal a person approves in any Spool client (web view,
spool approve, an editor) or, with --role person, in the agent itself when it
supports elicitation; output streams as MCP progress and stays in Spool. One
MCP connection is one Spool run, titled with the client's name. Tools: run_command, read_output,
send_input, signal, cancel, list_commands; each command is also a resource
spool://RUN/PATH. It speaks MCP 2025-11-25 (a client that sends initialize) and
2026-07-28 (each request's _meta; approvals as input_required with --role
person, tasks, subscriptions/listen). Nothing but MCP messages goes to stdout;
logs go to stderr.

It is a client of the Spool server of the home; when none answers it starts
the home's own (spool serve --home, detached, output in $SPOOL_HOME/serve.log)
and says so on stderr (its address, the home, how to decide its proposals);
never a server of another home. It goes on after the agent quits, with the runs.

\`spool mcp add claude\` (codex, inspector, or any client's name) connects a client
with a credential of its own: an agent's, scoped to the project, kept in the home
and named in the client's configuration (--credential NAME), so the client's files
hold no token and nothing it holds decides (\`spool mcp add --help\`).`,
  options: {
    project: {
      type: "string",
      arg: "DIR",
      help: `the project's directory   [default: found from the current
directory upwards like git (.spool/project.json, .git),
else the current directory]`,
    },
    runner: {
      type: "string",
      arg: "NAME",
      help: `propose every command for this runner (spool runners lists
them), shown before each decision; a run_command's own
runner argument overrides it   [default: the one the
decision picks: the project's default runner]`,
    },
    mode: { type: "string", arg: "MODE", help: "act: commands with side effects (sh, default);\nask: every command runs read-only (env)" },
    role: {
      type: "string",
      arg: "ROLE",
      help: `agent: the connection proposes, cancels and withdraws in
its own run and never decides; person: the MCP client's
elicitation may also accept (the credential must be a
person's or an admin's)   [default: agent]`,
    },
    server: { type: "string", arg: "URL", help: "use this server (never started here)   [$SPOOL_SERVER]" },
    credential: {
      type: "string",
      arg: "NAME",
      help: "the credential spool mcp add made for this client, kept in\nthe home ($SPOOL_HOME/credentials/NAME)",
    },
    "token-file": {
      type: "string",
      arg: "PATH",
      help: "a credential's file (a client's own is better named with\n--credential: spool mcp add makes it)   [default: $SPOOL_HOME/token]",
    },
    home: { type: "string", arg: "DIR", help: "Spool home              [$SPOOL_HOME, ~/.spool]" },
  },
});

export const MCP: Command = { spec: MCP_SPEC, run: (argv) => mcp(argv) };

/** The project of a directory: a marker or a git repository at or above it, else the directory itself. */
function projectOf(dir: string): { root?: string; name?: string } {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(dir);
  } catch {
    throw usageError(`--project ${dir}: no such directory`);
  }
  if (!stats.isDirectory()) throw usageError(`--project ${dir}: not a directory`);
  const found = findProject(dir, {});
  if (!found) return { root: dir };
  return { ...(found.root ? { root: found.root } : {}), ...(found.name ? { name: found.name } : {}) };
}

export async function mcp(argv: string[]): Promise<number> {
  // Loaded only for `add`: an editor's start of spool mcp loads none of it.
  if (argv[0] === "add") return (await import("./client-add.js")).addClient("mcp", argv.slice(1));
  const { values, positionals: rest } = parseSpec(MCP_SPEC, argv);
  if (values.help) return showHelp(MCP_SPEC);
  positionals("mcp", rest, []);
  const mode = values.mode ?? "act";
  if (mode !== "ask" && mode !== "act") throw usageError(`--mode is ask or act, not "${mode}"`);
  const role = values.role ?? "agent";
  if (role !== "agent" && role !== "person") throw usageError(`--role is agent or person, not "${role}"`);
  if (values.runner !== undefined && (values.runner === "" || values.runner === "self"))
    throw usageError(`--runner names an attached runner (spool runners lists them), not "${values.runner}"`);
  const project = projectOf(resolve(values.project ?? workingDirectory()));
  const log = createLogger((process.env.SPOOL_LOG as never) ?? "warn");
  // The home's configuration is read up front: a broken one is an error before the agent waits on us.
  if (values.credential !== undefined && values["token-file"] !== undefined) throw usageError("--credential and --token-file name two credentials: give one");
  const badName = values.credential !== undefined ? credentialNameError(values.credential) : null;
  if (badName) throw usageError(`--credential: ${badName}`);
  const location = located(() => locateServer(values));
  const server = once(() => ensureServer(location, log));
  // 2025-11-25 (initialize) and 2026-07-28 (each request's _meta), told apart message by message (src/mcp/stdio.ts).
  const stdio = spoolMcp({
    input: process.stdin,
    write: (line) => process.stdout.write(line),
    server,
    project,
    mode,
    role,
    runner: values.runner,
    where: whereTold(location),
    version: SERVER_VERSION,
    log,
  });
  const stop = () => stdio.stop();
  // An agent that runs us in its terminal's process group passes on a person's Ctrl-C: with stdin a pipe it is
  // not meant for us (the agent sends notifications/cancelled for what it wants stopped).
  const interrupt = () => {
    if (process.stdin.isTTY) stop();
    else log.info("spool mcp: SIGINT ignored (stdin is not a terminal; close stdin or send SIGTERM to end)");
  };
  process.once("SIGTERM", stop);
  process.on("SIGINT", interrupt);
  try {
    await stdio.serve();
  } finally {
    process.off("SIGTERM", stop);
    process.off("SIGINT", interrupt);
  }
  return 0;
}

/** Which Spool server the MCP client's commands go to, for its instructions: the one named, or the home's (started if none answers). */
function whereTold(location: ReturnType<typeof locateServer>): string {
  return location.explicit
    ? `Its Spool server is ${location.url}; a person decides there.`
    : `Its Spool server is the one of the home ${location.home} (${location.url || location.socketPath}), started by spool mcp if none answered; a person decides with SPOOL_HOME=${location.home} spool pending, or on its page (spool open).`;
}

/** The server's location; a client credential the home does not hold is the connection's error (exit 3), and nothing starts. */
export function located<T>(locate: () => T): T {
  try {
    return locate();
  } catch (error) {
    throw error instanceof MissingCredential ? new CliError(error.message, EXIT.connection) : error;
  }
}

/** `make()`'s promise, made once; a failure (no server yet, a bad token) is tried again at the next call. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | null = null;
  return () => {
    if (!made) {
      const making = make();
      made = making;
      making.catch(() => {
        if (made === making) made = null;
      });
    }
    return made;
  };
}
