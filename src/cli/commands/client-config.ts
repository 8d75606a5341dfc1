import { spawnSync } from "node:child_process";
import { accessSync, constants, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { workingDirectory } from "../common.js";
import { CliError, EXIT } from "../errors.js";

/*
 * What `spool mcp add` / `spool acp add` give each client (src/cli/commands/client-add.ts makes the credential): the
 * command line that starts `spool mcp` or `spool acp` with the credential's name, the client's own command that adds
 * it (claude, codex), the MCP Inspector's line, or the entry to paste; by URL, the address and the bearer header.
 */

export type Protocol = "mcp" | "acp";

/** The name the client's configuration gives Spool's entry. */
export const ENTRY = "spool";

/** What is to be made for a client, and how it reaches the server. */
export interface Plan {
  protocol: Protocol;
  client: string;
  principal: string;
  role: "agent" | "person";
  transport: "stdio" | "http";
  project: { name: string; root: string };
  home: string;
  /** The `--server` the stdio command carries: the one this command was pointed at, if it was. */
  server: string | undefined;
  /** Where the client reaches the server (http). */
  base: URL;
  scope: "local" | "project" | "user";
  expiresAt: number | undefined;
  /** What the client's `spool mcp` / `spool acp` (or its URL) carries besides: --runner, --mode (MCP), --model (ACP). */
  runner: string | undefined;
  mode: "ask" | "act" | undefined;
  model: string | undefined;
}

/** How `spool` is started by another program: `spool` when the one on PATH is this one, else node and this file. */
export function spoolCommand(): string[] {
  const self = realpathOrNull(process.argv[1] ?? "");
  const onPathSpool = whichFile("spool");
  if (self && onPathSpool && realpathOrNull(onPathSpool) === self) return ["spool"];
  return [process.execPath, self ?? resolve(process.argv[1] ?? "spool")];
}

/** `spool mcp` / `spool acp`'s arguments for this client: its credential by name, and what differs from the defaults. */
export function stdioArgs(plan: Plan): string[] {
  const defaultHome = resolve(homedir(), ".spool");
  // A project's .mcp.json is everyone's: no path of this machine in it (Claude Code starts spool mcp in the project).
  const shared = plan.client === "claude" && plan.scope === "project";
  return [
    plan.protocol,
    ...(plan.protocol === "mcp" && !shared ? ["--project", plan.project.root] : []),
    "--credential",
    plan.principal,
    ...(plan.protocol === "mcp" && plan.role === "person" ? ["--role", "person"] : []),
    ...(plan.runner !== undefined ? ["--runner", plan.runner] : []),
    ...(plan.mode !== undefined ? ["--mode", plan.mode] : []),
    ...(plan.model !== undefined ? ["--model", plan.model] : []),
    ...(resolve(plan.home) !== defaultHome ? ["--home", plan.home] : []),
    ...(plan.server !== undefined ? ["--server", plan.server] : []),
  ];
}

export function mcpUrl(plan: Plan): string {
  const query = new URLSearchParams({ project: plan.project.name });
  if (plan.mode !== undefined) query.set("mode", plan.mode);
  if (plan.runner !== undefined) query.set("runner", plan.runner);
  return `${new URL("mcp", plan.base).href}?${query}`;
}

export interface ClientCommand {
  argv: string[];
  /** Where it runs (Claude Code keys its local and project configuration by directory). */
  cwd?: string;
  /** A variable the client reads the token from (Codex by URL): its name. */
  env?: { name: string };
  /** What the echo shows of it (the token left out). */
  shown: string[];
  /** Run first, its failure ignored: what takes out an entry of that name (Claude Code refuses to add over one). */
  before?: string[];
}

/** The client's own command that adds Spool (claude, codex, the Inspector's command line), or null for another client. */
export function clientCommand(plan: Plan, token: string): ClientCommand | null {
  const spool = [...spoolCommand(), ...stdioArgs(plan)];
  const header = (t: string) => `Authorization: Bearer ${t}`;
  const hidden = `<the token of ${plan.principal}>`;
  switch (plan.client) {
    case "claude": {
      const head = ["claude", "mcp", "add", "--scope", plan.scope];
      const before = ["claude", "mcp", "remove", "--scope", plan.scope, ENTRY];
      if (plan.transport === "stdio") {
        const argv = [...head, ENTRY, "--", ...spool];
        return { argv, cwd: plan.project.root, shown: argv, before };
      }
      const argv = (t: string) => [...head, "--transport", "http", ENTRY, mcpUrl(plan), "--header", header(t)];
      return { argv: argv(token), cwd: plan.project.root, shown: argv(hidden), before };
    }
    case "codex": {
      if (plan.transport === "stdio") {
        const argv = ["codex", "mcp", "add", ENTRY, "--", ...spool];
        return { argv, shown: argv };
      }
      // Codex keeps no token in its configuration: the name of the variable it reads it from.
      const name = `SPOOL_TOKEN_${plan.principal.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
      const argv = ["codex", "mcp", "add", ENTRY, "--url", mcpUrl(plan), "--bearer-token-env-var", name];
      return { argv, env: { name }, shown: argv };
    }
    case "inspector": {
      const head = ["npx", "@modelcontextprotocol/inspector", "--cli"];
      if (plan.transport === "stdio") {
        const argv = [...head, ...spool, "--method", "tools/list"];
        return { argv, shown: argv };
      }
      const argv = (t: string) => [...head, mcpUrl(plan), "--transport", "http", "--header", header(t), "--method", "tools/list"];
      return { argv: argv(token), shown: argv(hidden) };
    }
    default:
      return null;
  }
}

/** Runs the client's command, its output on stderr (stdout is for what is to be pasted); its exit code. */
export function runClient(command: ClientCommand, said: string): number {
  const cwd = command.cwd ?? workingDirectory();
  if (command.before) {
    const removed = spawnSync(command.before[0]!, command.before.slice(1), { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    if (removed.status === 0) process.stderr.write(`${said} ran ${shellLine(command.before)}: the entry "${ENTRY}" there is replaced\n`);
  }
  process.stderr.write(`${said} running ${shellLine(command.shown)}${command.cwd ? ` (in ${command.cwd})` : ""}\n`);
  const ran = spawnSync(command.argv[0]!, command.argv.slice(1), { cwd, stdio: ["ignore", 2, 2] });
  if (ran.error) throw new CliError(`could not run ${command.argv[0]}: ${ran.error.message}`, EXIT.failed);
  return ran.status ?? 1;
}

/** The ACP editor's configuration: Zed's agent_servers entry (stdio), or the URL and header (http). */
export function printAcp(plan: Plan, token: string, said: string): number {
  if (plan.transport === "http") {
    const url = new URL("acp", plan.base).href;
    process.stdout.write(`URL:     ${url}        (or ${url.replace(/^http/, "ws")})\nHeader:  Authorization: Bearer ${token}\n`);
    return EXIT.ok;
  }
  const [command, ...first] = spoolCommand();
  const entry = { type: "custom", command, args: [...first, ...stdioArgs(plan)] };
  process.stdout.write(`${JSON.stringify({ agent_servers: { Spool: entry } }, null, 2)}\n`);
  process.stderr.write(`${said} put the entry in your editor's settings (Zed: settings.json, agent_servers); any ACP client runs the same command line\n`);
  return EXIT.ok;
}

/** A command line as a POSIX shell reads it back. */
export function shellLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** Whether an executable named `name` is on PATH. */
export function onPath(name: string): boolean {
  return whichFile(name) !== null;
}

function whichFile(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

function realpathOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}
