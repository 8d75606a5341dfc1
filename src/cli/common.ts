import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import { escapeControl } from "../protocol/proposal-facts.js";
import { SERVER_VERSION } from "../version.js";
import { CliError, EXIT, type Target, usageError } from "./errors.js";
import { findProject, type ProjectRef, requireProject, spoolHome } from "./project.js";

/** Flags every client command takes (parseArgs options). */
export const CLIENT_OPTIONS = {
  server: { type: "string" },
  "token-file": { type: "string" },
  project: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const JSON_OPTION = { json: { type: "boolean" } } as const;

export const CLIENT_HELP = `Connection:
  --server URL        the server          [$SPOOL_SERVER, default: ws://127.0.0.1:$SPOOL_PORT/, port 7420]
  --token-file PATH   its token           [$SPOOL_TOKEN_FILE, default: $SPOOL_HOME/token, ~/.spool/token]
  --project NAME      project             [$SPOOL_PROJECT, default: found from this directory
                      upwards: .spool/project.json (spool init), else a git repository's root]
  -h, --help          show this help
`;

export interface ClientFlags {
  server?: string;
  "token-file"?: string;
  project?: string;
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

/** Parses a command's arguments strictly; a mistake is a usage error naming the command's help. */
export function parseCommand<O extends OptionSpec>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message.replace(/\. To specify a positional argument.*$/s, "") : String(error);
    throw usageError(`${message} (see \`spool help ${command}\`)`);
  }
}

/** Where the server is, from flags, then SPOOL_SERVER / SPOOL_HOME / SPOOL_PORT / SPOOL_HOST, then the defaults. */
export function serverTarget(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): Target {
  const home = spoolHome(env);
  const host = env.SPOOL_HOST && env.SPOOL_HOST !== "0.0.0.0" ? env.SPOOL_HOST : "127.0.0.1";
  const url = flags.server ?? env.SPOOL_SERVER ?? `ws://${host.includes(":") ? `[${host}]` : host}:${env.SPOOL_PORT ?? 7420}/`;
  const tokenFile = flags["token-file"] ?? env.SPOOL_TOKEN_FILE ?? join(home, "token");
  return { url, tokenFile };
}

/** The target the current command uses, for error messages (set by connect). */
export let currentTarget: Target | null = null;

/** The directory the person typed the command in (`npm run spool -- …` runs in the package's folder; INIT_CWD is theirs). */
export const workingDirectory = () => (process.env.npm_lifecycle_event === "spool" && process.env.INIT_CWD) || process.cwd();

/** Connects to the server; does not join a project. */
export async function connectServer(flags: ClientFlags): Promise<SpoolClient> {
  const target = serverTarget(flags);
  currentTarget = target;
  let token: string;
  try {
    token = readFileSync(target.tokenFile, "utf8").trim();
  } catch {
    throw new CliError(
      `no token file at ${target.tokenFile} — start the server with \`spool serve\` (it writes its token there), or pass --token-file PATH`,
      EXIT.connection,
    );
  }
  return SpoolClient.connect(target.url, { token });
}

export interface Connected {
  client: SpoolClient;
  project: { name: string; root: string };
}

/**
 * Connects and joins the project found from the working directory (or named by
 * --project / $SPOOL_PROJECT). With `create: false` (commands that only read)
 * a project the server does not know yet is an error, not a new project.
 */
export async function connectClient(flags: ClientFlags, options: { name?: string; create?: boolean } = {}): Promise<Connected> {
  const here = workingDirectory();
  const ref = requireProject(here, flags);
  const client = await connectServer(flags);
  try {
    const joined = await client.initialize(ref.name, {
      ...(ref.root ? { root: ref.root } : {}),
      create: options.create ?? false,
      client: { name: options.name ?? "spool-cli", version: SERVER_VERSION },
    });
    return { client, project: joined.project };
  } catch (error) {
    client.close();
    throw projectError(error, ref);
  }
}

function projectError(error: unknown, ref: ProjectRef): unknown {
  if (!(error instanceof SpoolRpcError)) return error;
  const what = ref.name ? `project "${ref.name}"` : `a project rooted at ${ref.root}`;
  if (error.errorCode === "NOT_FOUND") {
    return new CliError(`the server has no ${what} yet — nothing has run here; start with \`spool act\` or \`spool init\``, EXIT.notFound);
  }
  if (error.errorCode === "CONFLICT") {
    return new CliError(
      `the server already has a project named "${ref.name}" with another root than ${ref.root} — pick another name: \`spool init OTHER-NAME\` (edit ${ref.root}/.spool/project.json)`,
      EXIT.failed,
    );
  }
  return error;
}

/** Exits the command when the connection drops: a promise that only ever rejects. */
export function connectionLost(client: SpoolClient, what: string): Promise<never> {
  return new Promise((_, reject) => {
    client.onClose((code, reason) => {
      reject(new CliError(`lost the connection to the server (${code}${reason ? ` ${reason}` : ""}) ${what}`, EXIT.connection));
    });
  });
}

export { findProject };

/** Colours for a terminal; none when stdout is not one, or NO_COLOR is set. */
export function palette(stream: NodeJS.WriteStream = process.stdout) {
  const on = Boolean(stream.isTTY) && !("NO_COLOR" in process.env && process.env.NO_COLOR !== "");
  const wrap = (code: string) => (text: string) => (on ? `\u001b[${code}m${text}\u001b[0m` : text);
  return { on, bold: wrap("1"), dim: wrap("2"), red: wrap("31"), green: wrap("32"), yellow: wrap("33"), cyan: wrap("36") };
}

/** Control characters shown as escapes: the one function every client uses (src/protocol/proposal-facts.ts). */
export { escapeControl };

/** "3s", "5m", "2h", "4d": how long ago. */
export function age(since: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - since) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Prints rows as a table, or as JSON with --json. Cells are escaped. */
export function printRows(rows: Record<string, unknown>[], columns: string[], json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? "" : escapeControl(String(r[c])))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const colours = palette();
  process.stdout.write(`${colours.bold(line(columns))}\n${cells.map(line).join("\n")}\n`);
}
