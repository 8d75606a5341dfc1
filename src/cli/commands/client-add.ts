import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { SpoolClient, SpoolRpcError } from "../../client/spool-client.js";
import { clientCredentialFile } from "../../config/settings.js";
import type { Role } from "../../protocol/roles.js";
import { SERVER_VERSION } from "../../version.js";
import { parseSpec, showHelp } from "../command-spec.js";
import { connectionLost, connectServer, serverTarget, workingDirectory } from "../common.js";
import { CliError, EXIT, knownProjects, usageError } from "../errors.js";
import { findProject, spoolHome } from "../project.js";
import { ADD_SPECS } from "./client-add-spec.js";
import { clientCommand, ENTRY, mcpUrl, onPath, type Plan, type Protocol, printAcp, runClient, shellLine, spoolCommand, stdioArgs } from "./client-config.js";
import { pageUrl } from "./open.js";
import { parseDuration } from "./token.js";

/*
 * `spool mcp add CLIENT` and `spool acp add CLIENT`: a client that connects gets a credential of its own — an agent's
 * (it proposes, never decides), scoped to one project, named after the client, listed and revoked by `spool token` —
 * and never the home's token. A client that starts `spool mcp` / `spool acp` itself (stdio) is given the credential's
 * name (`--credential NAME`): the token stays in the Spool home, which no sandbox sees. A client that comes by URL
 * (`/mcp`, `/acp`) holds the token itself: one that can decide nothing if it is read from the client's files.
 */

/** The clients `spool mcp add` configures by running their own command; any other name gets its configuration printed. */
const RUNS: Record<string, { program: string; title: string }> = {
  claude: { program: "claude", title: "Claude Code" },
  codex: { program: "codex", title: "Codex CLI" },
};

const CLIENT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/** What `spool mcp add …` / `spool acp add …` was asked, checked before anything connects. */
interface Asked {
  protocol: Protocol;
  client: string;
  name: string | undefined;
  project: string | undefined;
  role: Plan["role"];
  transport: Plan["transport"];
  scope: Plan["scope"];
  url: string | undefined;
  expiresAt: number | undefined;
  runner: string | undefined;
  mode: Plan["mode"];
  model: string | undefined;
  flags: { server: string | undefined; "token-file": string | undefined };
  how: { dryRun: boolean; print: boolean; rotate: boolean; runs: { program: string; title: string } | undefined };
}

/** `spool mcp add …` / `spool acp add …`: the arguments after `add`. */
export async function addClient(protocol: Protocol, argv: string[]): Promise<number> {
  const asked = readArguments(protocol, argv);
  if (typeof asked === "number") return asked;
  const target = await serverTarget(asked.flags);
  const admin = await connectServer(asked.flags);
  try {
    return await Promise.race([connectionLost(admin, "while making the client's credential"), planAndCarryOut(admin, target, asked)]);
  } finally {
    admin.close();
  }
}

/** The arguments, each checked (a usage error changes nothing); an exit code when it only showed help. */
function readArguments(protocol: Protocol, argv: string[]): Asked | number {
  const spec = ADD_SPECS[protocol];
  const { values, positionals } = parseSpec(spec, argv) as { values: Record<string, string | boolean | undefined>; positionals: string[] };
  if (values.help) return showHelp(spec);
  const text = (name: string) => values[name] as string | undefined;
  if (positionals.length !== 1) throw usageError(`spool ${protocol} add takes one CLIENT (see \`spool help ${protocol}\`)`);
  const client = positionals[0]!;
  if (!CLIENT_NAME.test(client)) throw usageError(`CLIENT is 1-64 letters, digits, '.', '_' or '-' (claude, codex, inspector, zed…), not "${client}"`);
  const role = oneOf(text("role") ?? "agent", ["agent", "person"] as const, "--role");
  const transport = oneOf(text("transport") ?? "stdio", ["stdio", "http"] as const, "--transport");
  const scope = oneOf(text("scope") ?? "local", ["local", "project", "user"] as const, "--scope");
  if (text("scope") !== undefined && !(protocol === "mcp" && client === "claude"))
    throw usageError("--scope is Claude Code's (spool mcp add claude): the other clients have one configuration");
  // A project's .mcp.json is shared with everyone working on it (often committed): no token goes there.
  if (scope === "project" && transport === "http")
    throw usageError("--scope project writes .mcp.json, which is shared with the project: by URL the token would be in it; use --scope local or user");
  const mode = text("mode") === undefined ? undefined : oneOf(text("mode")!, ["ask", "act"] as const, "--mode");
  const runner = text("runner");
  if (runner !== undefined && (runner === "" || runner === "self"))
    throw usageError(`--runner names an attached runner (spool runners lists them), not "${runner}"`);
  const model = text("model");
  if (model !== undefined && transport === "http") throw usageError("--model is spool acp's (stdio): a client by URL chooses the model of its sessions");
  if (text("url") !== undefined && transport !== "http")
    throw usageError("--url is for --transport http (a client that starts spool reaches the server itself)");
  const name = text("name");
  if (name !== undefined && !CLIENT_NAME.test(name)) throw usageError(`--name is 1-64 letters, digits, '.', '_' or '-', not "${name}"`);
  const expiresAt = text("expires") !== undefined ? Date.now() + parseDuration(text("expires")!) : undefined;
  const dryRun = values["dry-run"] === true;
  const runs = protocol === "mcp" ? RUNS[client] : undefined;
  const print = values.print === true || runs === undefined;
  // A client whose command is to run must be there before anything is made.
  if (runs && !print && !dryRun && !onPath(runs.program))
    throw new CliError(
      `${runs.program} is not on PATH, so ${runs.title} cannot be configured here: --print makes the credential and prints the command to run where it is (--dry-run shows it and makes nothing)`,
      EXIT.failed,
    );
  return {
    protocol,
    client,
    name,
    project: text("project"),
    role,
    transport,
    scope,
    url: text("url"),
    expiresAt,
    runner,
    mode,
    model,
    flags: { server: text("server"), "token-file": text("token-file") },
    how: { dryRun, print, rotate: values.rotate === true, runs },
  };
}

/** `value` when it is one of `allowed`, else a usage error naming them. */
function oneOf<const T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw usageError(`${flag} is ${allowed.slice(0, -1).join(", ")} or ${allowed.at(-1)}, not "${value}"`);
  return value as T;
}

/** The project joined, the plan made of it, and the plan carried out. */
async function planAndCarryOut(admin: SpoolClient, target: { url: string; tcpUrl: string }, asked: Asked): Promise<number> {
  const { project, listening } = await joinProject(admin, asked.project, asked.how.dryRun);
  const plan: Plan = {
    protocol: asked.protocol,
    client: asked.client,
    principal: asked.name ?? defaultName(asked.client, project.name, asked.transport),
    role: asked.role,
    transport: asked.transport,
    project,
    home: spoolHome(),
    server: asked.flags.server ?? (process.env.SPOOL_SERVER || undefined),
    base: baseUrl(asked.url, tcpAddress(target, listening), asked.protocol),
    scope: asked.scope,
    expiresAt: asked.expiresAt,
    runner: asked.runner,
    mode: asked.mode,
    model: asked.model,
  };
  return carryOut(admin, target.url, plan, asked.how);
}

/**
 * CLIENT-PROJECT (by URL CLIENT-PROJECT-http: a client may have both, and one's rotation must not end the other),
 * cut to a principal's 64 characters (without a trailing '-' or '.').
 */
function defaultName(client: string, project: string, transport: "stdio" | "http"): string {
  const suffix = transport === "http" ? "-http" : "";
  return `${`${client}-${project}`.slice(0, 64 - suffix.length).replace(/[-.]+$/, "")}${suffix}`;
}

/** The project: named (or a directory, `--project ~/src/app`), else found from here like git; made only when found here. */
async function joinProject(
  admin: SpoolClient,
  given: string | undefined,
  dryRun: boolean,
): Promise<{ project: { name: string; root: string }; listening: string | undefined }> {
  const asDirectory = given !== undefined && (given.includes("/") || given === "." || given === "..");
  const start = asDirectory ? resolve(workingDirectory(), given) : workingDirectory();
  const found = findProject(start, asDirectory ? {} : given !== undefined ? { project: given } : {});
  if (!found)
    throw usageError(
      `not in a Spool project: no .spool/project.json and no git repository in ${start} or above — pass --project NAME (a project spool runs --all lists)`,
    );
  if (found.source === "flag") await knownProjects(admin, [found.name!]);
  try {
    const joined = await admin.initialize(found.name, {
      ...(found.root ? { root: found.root } : {}),
      // A directory found here becomes a project as `spool init` makes one; a name must be one the server has.
      create: found.source !== "flag" && found.source !== "env" && !dryRun,
      client: { name: "spool-cli", version: SERVER_VERSION },
    });
    return { project: joined.project, listening: joined.server.url };
  } catch (error) {
    if (error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND")
      throw new CliError(
        `the server has no project ${found.name ? `"${found.name}"` : `rooted at ${found.root}`} yet: spool init there makes it`,
        EXIT.notFound,
      );
    throw error;
  }
}

/**
 * The server's TCP address: as it says it listens (its real port, whatever the settings this command read say: a
 * `spool serve --port` or port 0 elsewhere) when this command came by the home's Unix socket, a wildcard as loopback;
 * else the address this command reached it by.
 */
function tcpAddress(target: { url: string; tcpUrl: string }, listening: string | undefined): string {
  if (!target.url.startsWith("ws+unix:") || listening === undefined || !URL.canParse(listening)) return target.tcpUrl;
  const url = new URL(listening);
  if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
  else if (url.hostname === "[::]") url.hostname = "[::1]";
  return url.href;
}

/** The address a client comes to by URL: `--url`, else the server's own (its TCP address). */
function baseUrl(given: string | undefined, tcpUrl: string, protocol: Protocol): URL {
  if (given === undefined) return pageUrl(tcpUrl);
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw usageError(`--url is an http:// or https:// address such as http://127.0.0.1:7420, not "${given}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw usageError(`--url is an http:// or https:// address such as http://127.0.0.1:7420, not "${given}"`);
  // The path of a reverse proxy in front is kept; /mcp or /acp goes after it.
  const path = url.pathname.replace(/\/+$/, "").replace(new RegExp(`/${protocol}$`), "");
  return new URL(`${url.origin}${path}/`);
}

interface Credential {
  /** The token, when this command holds it (made now, or the home's copy); null in a dry run. */
  token: string | null;
  /** What was done: made, reused, or made in place of a revoked one. */
  done: "made" | "reused" | "rotated";
  /** What the revocation of the old one did. */
  revoked?: { closed: number; withdrawn: number };
}

/** Makes (or reuses) the credential, then configures the client (or prints its configuration). */
async function carryOut(admin: SpoolClient, url: string, plan: Plan, how: Asked["how"]): Promise<number> {
  const file = clientCredentialFile(plan.home, plan.principal);
  const credential = await credentialFor(admin, url, plan, file, how);
  const said = `spool ${plan.protocol} add:`;
  process.stderr.write(`${said} ${whatWasDone(plan, credential, file, how.dryRun)}\n`);
  const token = credential.token ?? "SPOOL-TOKEN";
  if (plan.protocol === "acp") return printAcp(plan, token, said);
  const command = clientCommand(plan, token);
  if (!command) {
    // Any other client: the entry its mcpServers file takes.
    const [program, ...first] = spoolCommand();
    const entry =
      plan.transport === "stdio"
        ? { command: program, args: [...first, ...stdioArgs(plan)] }
        : { type: "http", url: mcpUrl(plan), headers: { Authorization: `Bearer ${token}` } };
    process.stdout.write(`${JSON.stringify({ mcpServers: { [ENTRY]: entry } }, null, 2)}\n`);
    return EXIT.ok;
  }
  if (how.print || how.dryRun) {
    process.stdout.write(`${shellLine(command.argv)}\n`);
    if (command.env) process.stdout.write(`export ${command.env.name}=${token}   # where ${plan.client} starts: it reads the token from there\n`);
    if (command.cwd) process.stderr.write(`${said} run it in ${command.cwd} (Claude Code's local and project configuration are the directory's)\n`);
    return EXIT.ok;
  }
  const ran = runClient(command, said);
  if (ran !== 0 && credential.done !== "reused") {
    // Nothing is left behind for a client that was not configured: the credential made for it goes again.
    await admin.call("token/revoke", { name: plan.principal }).catch(() => undefined);
    if (plan.transport === "stdio") rmSync(file, { force: true });
    throw new CliError(`${command.argv[0]} exited ${ran}: the credential "${plan.principal}" made for it is revoked again`, EXIT.failed);
  }
  if (ran !== 0) throw new CliError(`${command.argv[0]} exited ${ran}; the credential "${plan.principal}" stays as it was`, EXIT.failed);
  const title = how.runs!.title;
  if (command.env) {
    // The token, once, where the person sees it: Codex reads it from this variable when it starts.
    process.stdout.write(`export ${command.env.name}=${token}\n`);
    process.stderr.write(`${said} ${title} reads the token from $${command.env.name}: set it (the line above) where it starts\n`);
  }
  const power =
    plan.role === "agent" ? "it proposes commands and a person decides them (spool pending, spool open)" : "it proposes commands and may decide them";
  process.stderr.write(`${said} ${title} reaches Spool as "${plan.principal}": ${power}; \`spool token revoke ${plan.principal}\` ends it\n`);
  return EXIT.ok;
}

/** The line that says which credential, and what was (or in a dry run would be) done with it. */
function whatWasDone(plan: Plan, credential: Credential, file: string, dryRun: boolean): string {
  const until = plan.expiresAt ? `, until ${new Date(plan.expiresAt).toISOString()}` : "";
  const which = `the credential "${plan.principal}" (${plan.role}, project ${plan.project.name}${until})${plan.transport === "stdio" ? `, kept in ${file}` : ", held by the client"}`;
  if (dryRun) return `dry run, nothing is changed: ${{ reused: "would reuse", rotated: "would replace", made: "would make" }[credential.done]} ${which}`;
  const revoked = credential.revoked
    ? ` (the old one revoked: ${credential.revoked.closed} connection(s) closed, ${credential.revoked.withdrawn} waiting proposal(s) withdrawn)`
    : "";
  return `${{ reused: "reusing", rotated: "replaced", made: "made" }[credential.done]} ${which}${revoked}`;
}

/**
 * The credential: the one the home holds for this client when it still works as this principal, role and project
 * (stdio, not --rotate, no new expiry); else a new one, in place of a live principal of that name with the same
 * role and project (revoked first: it is this client's earlier credential); a principal of that name that is
 * anything else is not touched (CONFLICT). In a dry run, what would be done, nothing done.
 */
async function credentialFor(admin: SpoolClient, url: string, plan: Plan, file: string, how: { dryRun: boolean; rotate: boolean }): Promise<Credential> {
  if (plan.transport === "stdio" && !how.rotate && plan.expiresAt === undefined && existsSync(file)) {
    const token = readFileSync(file, "utf8").trim();
    if (await worksAs(url, token, plan)) return { token, done: "reused" };
  }
  const { principals } = await admin.call("token/list", { revoked: false });
  const live = principals.find((p) => p.name === plan.principal);
  if (live && !(live.role === plan.role && live.projects?.length === 1 && live.projects[0] === plan.project.name))
    throw new CliError(
      `a credential named "${plan.principal}" exists for something else (${live.role}, ${live.projects ? `projects ${live.projects.join(", ")}` : "every project"}): --name picks another name, or \`spool token revoke ${plan.principal}\` ends it first`,
      EXIT.failed,
    );
  if (how.dryRun) return { token: null, done: live ? "rotated" : "made" };
  let revoked: Credential["revoked"];
  if (live) {
    const { closed, withdrawn } = await admin.call("token/revoke", { name: plan.principal });
    revoked = { closed, withdrawn };
  }
  const created = await admin.call("token/create", {
    name: plan.principal,
    role: plan.role as Role,
    projects: [plan.project.name],
    ...(plan.expiresAt !== undefined ? { expiresAt: plan.expiresAt } : {}),
  });
  if (plan.transport === "stdio") keep(file, created.token);
  // A client moved from stdio to http holds its token itself: the home's copy of the old one goes.
  else rmSync(file, { force: true });
  return { token: created.token, done: live ? "rotated" : "made", ...(revoked ? { revoked } : {}) };
}

/** Whether `token` is live and names this principal, with this role, scoped to this project alone. */
async function worksAs(url: string, token: string, plan: Plan): Promise<boolean> {
  let client: SpoolClient;
  try {
    client = await SpoolClient.connect(url, { token });
  } catch {
    return false;
  }
  try {
    const { principal } = await client.initialize(plan.project.name, { create: false, client: { name: "spool-cli", version: SERVER_VERSION } });
    return (
      principal?.name === plan.principal && principal.role === plan.role && principal.projects?.length === 1 && principal.projects[0] === plan.project.name
    );
  } catch {
    return false;
  } finally {
    client.close();
  }
}

/** Writes the token into the home's credentials directory: the directory 0700, the file 0600, replaced whole. */
function keep(file: string, token: string): void {
  const dir = join(file, "..");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // One made by hand (or by an older umask) is made private too: it holds tokens.
  chmodSync(dir, 0o700);
  const part = `${file}.${process.pid}.part`;
  writeFileSync(part, `${token}\n`, { mode: 0o600 });
  renameSync(part, file);
}
