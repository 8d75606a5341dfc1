import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import { SERVER_VERSION } from "../version.js";

/** Flags every client command takes (parseArgs options). */
export const CLIENT_OPTIONS = {
  server: { type: "string" },
  "token-file": { type: "string" },
  project: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const CLIENT_HELP = `Connection:
  --server URL        the server          [default: ws://127.0.0.1:$SPOOL_PORT/, port 7420]
  --token-file PATH   its token           [default: $SPOOL_HOME/token, ~/.spool/token]
  --project NAME      project             [$SPOOL_PROJECT, default: this directory's name]
  -h, --help          show this help
`;

export interface ClientFlags {
  server?: string;
  "token-file"?: string;
  project?: string;
}

/** Where the server is, from flags, then SPOOL_HOME / SPOOL_PORT / SPOOL_HOST, then the defaults. */
export function serverTarget(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env) {
  const home = env.SPOOL_HOME ?? join(homedir(), ".spool");
  const host = env.SPOOL_HOST && env.SPOOL_HOST !== "0.0.0.0" ? env.SPOOL_HOST : "127.0.0.1";
  const url = flags.server ?? env.SPOOL_SERVER ?? `ws://${host.includes(":") ? `[${host}]` : host}:${env.SPOOL_PORT ?? 7420}/`;
  const tokenFile = flags["token-file"] ?? env.SPOOL_TOKEN_FILE ?? join(home, "token");
  return { url, tokenFile };
}

/** Connects and joins the project; a project named after this directory is rooted here when it is new. */
export async function connectClient(flags: ClientFlags, name = "spool-cli"): Promise<{ client: SpoolClient; project: string }> {
  const { url, tokenFile } = serverTarget(flags);
  let token: string;
  try {
    token = readFileSync(tokenFile, "utf8").trim();
  } catch {
    throw new Error(`Cannot read the token file ${tokenFile}; is the server running (spool serve), or pass --token-file`);
  }
  const client = await SpoolClient.connect(url, { token });
  const implied = !flags.project && !process.env.SPOOL_PROJECT;
  // `npm run spool -- …` runs in the package's folder; INIT_CWD is where the user typed it.
  const here = process.env.INIT_CWD ?? process.cwd();
  const project = flags.project ?? process.env.SPOOL_PROJECT ?? basename(here);
  const info = { name, version: SERVER_VERSION };
  try {
    await client.initialize(project, implied ? { root: here, client: info } : { client: info });
  } catch (error) {
    // The project exists with another root: join it as it is.
    if (!(implied && error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) throw error;
    await client.initialize(project, { client: info });
  }
  return { client, project };
}

/** Colours for a terminal; none when stdout is not one, or NO_COLOR is set. */
export function palette(stream: NodeJS.WriteStream = process.stdout) {
  const on = Boolean(stream.isTTY) && !("NO_COLOR" in process.env && process.env.NO_COLOR !== "");
  const wrap = (code: string) => (text: string) => (on ? `\u001b[${code}m${text}\u001b[0m` : text);
  return { on, bold: wrap("1"), dim: wrap("2"), red: wrap("31"), green: wrap("32"), yellow: wrap("33"), cyan: wrap("36") };
}

/** Prints rows as a table, or as JSON with --json. */
export function printRows(rows: Record<string, unknown>[], columns: string[], json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? "" : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const colours = palette();
  process.stdout.write(`${colours.bold(line(columns))}\n${cells.map(line).join("\n")}\n`);
}
