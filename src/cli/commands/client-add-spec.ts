import { type CommandSpec, defineCommand } from "../command-spec.js";
import type { Protocol } from "./client-config.js";

/*
 * The rows of `spool mcp add` and `spool acp add` (src/cli/commands/client-add.ts): apart, so that `spool mcp`'s and
 * `spool acp`'s own rows name them (help, Tab completion) without loading what they do.
 */

const COMMON_OPTIONS = {
  name: { type: "string", arg: "NAME", help: "the credential's (principal's) name\n[default: CLIENT-PROJECT, by URL CLIENT-PROJECT-http]" },
  role: {
    type: "string",
    arg: "ROLE",
    help: `agent: proposes, never decides; person: may also decide in
the client itself (its token decides wherever it is read)
[default: agent]`,
  },
  transport: {
    type: "string",
    arg: "KIND",
    help: `stdio: the client starts spool (the token stays in the Spool
home); http: the client comes by URL and holds the token
[default: stdio]`,
  },
  url: { type: "string", arg: "URL", help: "the server's address as the client reaches it (http)\n[default: the server's own, e.g. http://127.0.0.1:7420]" },
  expires: { type: "string", arg: "DURATION", help: "when the credential stops working: 30m, 12h, 7d, 4w   [default: never]" },
  rotate: { type: "boolean", help: "a new credential even when the home holds a working one\n(the old one is revoked)" },
  print: { type: "boolean", help: "do not run the client's command: print it (or the\nconfiguration to paste), with the credential made" },
  "dry-run": { type: "boolean", help: "change nothing: say what would be made and run" },
} as const;

const MCP_ADD_OPTIONS = {
  ...COMMON_OPTIONS,
  scope: { type: "string", arg: "SCOPE", help: "Claude Code's configuration: local, project (.mcp.json;\nstdio only) or user   [default: local]" },
  runner: { type: "string", arg: "NAME", help: "propose every command for this runner (spool mcp --runner)" },
  mode: { type: "string", arg: "MODE", help: "ask: every command read-only; act   [default: act]" },
} as const;

const ACP_ADD_OPTIONS = {
  ...COMMON_OPTIONS,
  model: { type: "string", arg: "ALIAS", help: "the model of new sessions (spool acp --model)" },
} as const;

export const MCP_ADD_SPEC = defineCommand({
  name: "mcp add",
  usage: "spool mcp add CLIENT [--project NAME] [--transport stdio|http] [--role agent|person] [--print] [--dry-run] …",
  about: `Connects an MCP client to Spool with a credential of its own: an agent's (it
proposes commands, a person decides them), scoped to the project, named after the
client (CLIENT-PROJECT), listed and revoked with spool token. It never hands the
client the home's token. CLIENT is
  claude     runs \`claude mcp add\` (Claude Code)
  codex      runs \`codex mcp add\` (Codex CLI)
  inspector  prints the MCP Inspector's command line
  any other  prints the mcpServers entry to paste (Cursor, Claude Desktop, …)
Over stdio (the default) the client starts \`spool mcp --credential NAME\`: the token
stays in the Spool home ($SPOOL_HOME/credentials/NAME), out of every sandbox's
view. Over http the client reaches /mcp by URL and holds the token. Run again for
the same client, it reuses the credential the home holds (stdio) or replaces it
(http, --rotate). The project is --project's (a name, or a directory), else the
one this directory is in. Says on stderr what it made and what it ran.`,
  connects: true,
  options: MCP_ADD_OPTIONS,
});

export const ACP_ADD_SPEC = defineCommand({
  name: "acp add",
  usage: "spool acp add CLIENT [--project NAME] [--transport stdio|http] [--role agent|person] [--dry-run] …",
  about: `Makes an ACP editor's credential and prints its configuration: an agent's by
default (the editor starts sessions and prompts; proposals are shown, and a person
decides them elsewhere: spool pending, the page), scoped to the project, named after
the editor (CLIENT-PROJECT), listed and revoked with spool token. It never hands the
editor the home's token. Over stdio (the default) it prints Zed's agent_servers
entry running \`spool acp --credential NAME\` (the token stays in the Spool home);
over http the /acp URL and the bearer header to give the editor. --role person
lets the editor decide (its token then decides wherever it is read).`,
  connects: true,
  options: ACP_ADD_OPTIONS,
});

export const ADD_SPECS: Record<Protocol, CommandSpec> = { mcp: MCP_ADD_SPEC, acp: ACP_ADD_SPEC };
