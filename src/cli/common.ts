import { existsSync, readFileSync } from "node:fs";
import { SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import { unixSocketUrl } from "../client/ws-transport.js";
import { recordStatePaths } from "../home/registry.js";
import { nearest } from "../protocol/nearest.js";
import { escapeControl } from "../protocol/proposal-facts.js";
import { SERVER_VERSION } from "../version.js";
import { CliError, EXIT, type Target, unknownName, usageError } from "./errors.js";
import { findProject, type ProjectRef, requireProject } from "./project.js";
import { type ClientSettings, clientSettings } from "./settings.js";

export interface ClientFlags {
  server?: string;
  "token-file"?: string;
  project?: string;
}

/**
 * Where the server is: --server / --token-file, else SPOOL_SERVER, else the home's server: its Unix socket when the
 * socket is there (SPEC §2c), else TCP from the settings `spool serve` reads (src/config/config.ts: SPOOL_HOST /
 * SPOOL_PORT / SPOOL_TOKEN_FILE, then "host" and "port" in $SPOOL_HOME/config.json, then the defaults). A server
 * bound to every address is reached on loopback. `tcpUrl` is the TCP address either way (a browser's page).
 */
export async function serverTarget(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): Promise<Target & { tcpUrl: string }> {
  const given = flags.server ?? (env.SPOOL_SERVER || undefined);
  if (given !== undefined) checkServerUrl(given, flags.server !== undefined ? "--server" : "SPOOL_SERVER");
  let config: ClientSettings;
  try {
    config = await clientSettings(env);
  } catch (error) {
    // A setting spool serve would refuse: the same message, here too.
    throw new CliError(error instanceof Error ? error.message : String(error), EXIT.usage);
  }
  const bound = config.host;
  const host = bound === "0.0.0.0" || bound === "" ? "127.0.0.1" : bound === "::" ? "::1" : bound;
  const homeTcp = `ws://${host.includes(":") ? `[${host}]` : host}:${config.port}/`;
  const tcpUrl = given !== undefined && !given.startsWith("ws+unix:") ? given : homeTcp;
  const url = given ?? (existsSync(config.socketPath) ? unixSocketUrl(config.socketPath) : tcpUrl);
  const tokenFile = flags["token-file"] ?? config.tokenFile;
  return { url, tokenFile, tcpUrl };
}

/** A server address must be a ws:// or wss:// URL; anything else is a usage error, not a connection failure. */
function checkServerUrl(value: string, where: string): void {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:" && url.protocol !== "ws+unix:")) {
    throw usageError(`${where} must be a WebSocket URL such as ws://127.0.0.1:7420/ (or ws+unix:///path/spool.sock:/), got "${value}"`);
  }
}

/** The target the current command uses, for error messages (set by connect). */
export let currentTarget: Target | null = null;

/** The directory the person typed the command in (`npm run spool -- …` runs in the package's folder; INIT_CWD is theirs). */
export const workingDirectory = () => (process.env.npm_lifecycle_event === "spool" && process.env.INIT_CWD) || process.cwd();

/** The token in `tokenFile`, or a connection error saying where the server writes it. */
export function readToken(tokenFile: string): string {
  try {
    const token = readFileSync(tokenFile, "utf8").trim();
    // A token file named with --token-file may be anywhere: no sandbox on this machine sees it (home/registry.ts).
    recordStatePaths([tokenFile]);
    return token;
  } catch {
    throw new CliError(
      `no token file at ${tokenFile} — start the server with \`spool serve\` (it writes its token there), or pass --token-file PATH`,
      EXIT.connection,
    );
  }
}

/** Connects to the server; does not join a project. */
export async function connectServer(flags: ClientFlags): Promise<SpoolClient> {
  const target = await serverTarget(flags);
  currentTarget = target;
  return SpoolClient.connect(target.url, { token: readToken(target.tokenFile) });
}

export interface Connected {
  client: SpoolClient;
  project: { name: string; root: string };
}

/**
 * Connects and joins the project found from the working directory (or named by
 * --project / $SPOOL_PROJECT). With `create: false` (commands that only read)
 * a project the server does not know yet is an error, not a new project, unless `spool init` marked it (joinProject).
 */
export async function connectClient(flags: ClientFlags, options: { name?: string; create?: boolean } = {}): Promise<Connected> {
  const here = workingDirectory();
  const ref = requireProject(here, flags);
  return joinProject(flags, ref, { create: options.create ?? false, name: options.name ?? "spool-cli" });
}

/**
 * Connects and joins `ref`'s project. A project `spool init` marked here (its marker found) that the server does not
 * have yet is registered now, as init said when no server was running: asked for again with `create` on a fresh
 * connection (a join that failed leaves its connection unjoined). Only an admin's credential may create; any other's
 * refusal says so (FORBIDDEN, naming the role). Errors are the CLI's words for them (projectError).
 */
async function joinProject(flags: ClientFlags, ref: ProjectRef, options: { create: boolean; name: string }): Promise<Connected> {
  const join = async (create: boolean): Promise<Connected> => {
    const client = await connectServer(flags);
    try {
      const joined = await client.initialize(ref.name, {
        ...(ref.root ? { root: ref.root } : {}),
        create,
        client: { name: options.name, version: SERVER_VERSION },
      });
      return { client, project: joined.project };
    } catch (error) {
      client.close();
      throw error;
    }
  };
  try {
    return await join(options.create);
  } catch (error) {
    const marked = !options.create && ref.source === "marker" && error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND";
    if (!marked) throw projectError(error, ref);
    try {
      return await join(true);
    } catch (again) {
      // Not an admin's credential: the project stays unknown here, and whose step registering it is.
      if (again instanceof SpoolRpcError && again.errorCode === "FORBIDDEN")
        throw new CliError(`the server has no project "${ref.name}" yet, and this credential may not register it: ${again.message}`, EXIT.notFound);
      throw projectError(again, ref);
    }
  }
}

function projectError(error: unknown, ref: ProjectRef): unknown {
  if (!(error instanceof SpoolRpcError)) return error;
  const what = ref.name ? `project "${ref.name}"` : `project rooted at ${ref.root}`;
  if (error.errorCode === "NOT_FOUND") return unknownProject(error, ref, what);
  if (error.errorCode === "CONFLICT") {
    return new CliError(
      `the server already has a project named "${ref.name}" with another root than ${ref.root} — pick another name: \`spool init OTHER-NAME\` (edit ${ref.root}/.spool/project.json)`,
      EXIT.failed,
    );
  }
  return error;
}

/**
 * A project the server does not have. Named (--project, $SPOOL_PROJECT, a marker): which there are, and the nearest
 * (a name alone never makes a project: its root would be the server's working directory). Found by its directory:
 * nothing has run there yet, and the first `spool act` there makes it.
 */
function unknownProject(error: SpoolRpcError, ref: ProjectRef, what: string): CliError {
  if (ref.root !== undefined)
    return new CliError(`the server has no ${what} yet — nothing has run here; start with \`spool act\` or \`spool init\``, EXIT.notFound);
  const listed = (error.data as { projects?: unknown } | undefined)?.projects;
  const projects = Array.isArray(listed) ? listed.filter((p): p is string => typeof p === "string") : [];
  return unknownName("project", ref.name!, projects, {
    flag: ref.source === "env" ? "$SPOOL_PROJECT" : "--project",
    owner: "the server",
    next: "A new project is made in its directory: `spool init` there, then `spool act`",
  });
}

/** Exits the command when the connection drops: a promise that only ever rejects. */
export function connectionLost(client: SpoolClient, what: string): Promise<never> {
  return new Promise((_, reject) => {
    client.onClose((code, reason) => {
      reject(new CliError(`lost the connection to the server (${code}${reason ? ` ${reason}` : ""}) ${what}`, EXIT.connection));
    });
  });
}

/** Runs a command body with a client joined to the project, closing it afterwards. */
export async function withClient<T>(flags: ClientFlags, body: (client: SpoolClient) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const { client } = await connectClient(flags, options);
  try {
    return await Promise.race([body(client), connectionLost(client, "while waiting for its answer")]);
  } finally {
    client.close();
  }
}

export { findProject, nearest };

/**
 * Connects and joins the project found here when the server knows it; `project` is null when no project is
 * found from this directory, or the server has none there yet (reads then show nothing, or every project).
 */
export async function connectIfProject(flags: ClientFlags): Promise<{ client: SpoolClient; project: string | null; here: ProjectRef | null }> {
  const here = findProject(workingDirectory(), flags);
  if (!here) return { client: await connectServer(flags), project: null, here };
  try {
    const { client, project } = await joinProject(flags, here, { create: false, name: "spool-cli" });
    return { client, project: project.name, here };
  } catch (error) {
    // A project named (--project, $SPOOL_PROJECT) must exist: exit 4 as everywhere a name is taken. Found from this
    // directory, it may just not have run anything yet (or, marked, not be this credential's to register).
    if (error instanceof CliError && error.exitCode === EXIT.notFound && here.root !== undefined)
      return { client: await connectServer(flags), project: null, here };
    throw error;
  }
}

/** Runs `body` once per project of the server, each with a client joined to it (closed afterwards). */
export async function forEachProject(flags: ClientFlags, body: (client: SpoolClient, project: string) => Promise<void>): Promise<void> {
  const lister = await connectServer(flags);
  let names: string[];
  try {
    names = (await lister.call("project/list", { limit: 1000 })).projects.map((p) => p.name);
  } finally {
    lister.close();
  }
  for (const name of names) {
    const client = await connectServer(flags);
    try {
      await client.initialize(name, { create: false, client: { name: "spool-cli", version: SERVER_VERSION } });
      await body(client, name);
    } finally {
      client.close();
    }
  }
}

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
export function printRows(rows: Record<string, unknown>[], columns: string[], json: boolean | undefined, whole: readonly string[] = []): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const terminal = process.stdout.isTTY ? process.stdout.columns : undefined;
  process.stdout.write(formatRows(rows, columns, { width: terminal || undefined, bold: palette().bold, whole }));
}

/**
 * A table's text: a header, then a row a line, the columns two spaces apart. Given a `width` (a terminal's columns),
 * a table wider than it is narrowed to fit: the widest column gives up characters first, none below its header's
 * width (or 6), and a cell cut short ends in "…". A table that cannot fit so (`spool runners`' eleven columns in 80)
 * is given a row at a time instead, a line a column (`formatRecords`): nothing cut. The `whole` columns give up
 * nothing (where a runner runs the project: a path cut short could name another); a table that cannot keep them whole
 * is given a row at a time. Without a width (a pipe, a file) every cell is whole.
 */
export function formatRows(
  rows: Record<string, unknown>[],
  columns: string[],
  options: { width?: number | undefined; bold?: (text: string) => string; whole?: readonly string[] } = {},
): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? "" : escapeControl(String(r[c])))));
  const natural = columns.map((c, i) => Math.max(displayWidth(c), ...cells.map((row) => displayWidth(row[i]!))));
  const floors = columns.map((c, i) => (options.whole?.includes(c) ? natural[i]! : Math.min(natural[i]!, Math.max(displayWidth(c), 6))));
  const bold = options.bold ?? ((text: string) => text);
  if (options.width !== undefined && floors.reduce((sum, w) => sum + w, 2 * (columns.length - 1)) > options.width) {
    return formatRecords(cells, columns, options.width, bold);
  }
  const widths = options.width === undefined ? natural : fitWidths(natural, floors, options.width);
  const line = (values: string[]) =>
    values
      .map((v, i) => padToWidth(cutToWidth(v, widths[i]!), widths[i]!))
      .join("  ")
      .trimEnd();
  return `${bold(line(columns))}\n${cells.map(line).join("\n")}\n`;
}

/**
 * Rows too wide for the terminal as a table: each row a block of `column  value` lines (its empty cells left out),
 * blocks a blank line apart; a value longer than the line goes on under itself, cut at `width` columns, never in
 * the middle of a character.
 */
function formatRecords(cells: string[][], columns: string[], width: number, bold: (text: string) => string): string {
  // Labels as wide as the widest of the columns that hold something; a line narrower than them and 12 columns of
  // value (a terminal under ~25 columns) still wraps.
  const used = columns.filter((_, i) => cells.some((row) => row[i] !== ""));
  const label = Math.max(0, ...used.map(displayWidth));
  const room = Math.max(12, width - label - 2);
  const indent = " ".repeat(label + 2);
  const block = (row: string[]) =>
    row.flatMap((value, i) => (value === "" ? [] : [`${bold(padToWidth(columns[i]!, label))}  ${wrapToWidth(value, room).join(`\n${indent}`)}`])).join("\n");
  return `${cells
    .map(block)
    .filter((text) => text !== "")
    .join("\n\n")}\n`;
}

/**
 * `text` in lines of at most `width` columns: broken at a space where a line has one (the space goes), else cut at
 * `width`, never inside a character (a wide one, an emoji with its skin tone, a letter with its accent).
 */
export function wrapToWidth(text: string, width: number): string[] {
  const limit = Math.max(1, width);
  const lines: string[] = [];
  let rest = text;
  while (displayWidth(rest) > limit) {
    // The longest head of whole characters that fits (at least one character, however narrow the line).
    let end = 0;
    let used = 0;
    for (const char of rest) {
      const w = charWidth(char);
      if (used + w > limit && end > 0) break;
      end += char.length;
      used += w;
    }
    const space = rest.slice(0, end).lastIndexOf(" ");
    const at = space > 0 ? space : end;
    lines.push(rest.slice(0, at));
    rest = rest.slice(space > 0 ? at + 1 : at);
  }
  return rest === "" && lines.length > 0 ? lines : [...lines, rest];
}

/**
 * The columns a terminal gives `text`: 2 for a wide character (CJK ideographs, Hangul, kana, fullwidth forms, emoji
 * drawn as pictures), 0 for what joins the character before it (a combining mark, a variation selector, a zero-width
 * joiner or space), 1 for the rest. A table's widths are counted so, not in UTF-16 units (a Chinese title was one
 * unit a character and two columns on the screen, and pushed its row's later cells out of line).
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += charWidth(char);
  return width;
}

const COMBINING = /^[\p{Mn}\p{Me}]$/u;
/**
 * Hangul's vowel and final jamo (drawn into the syllable a decomposed Korean name spells, as macOS file names are),
 * zero-width spaces and joiners, word joiner, variation selectors, emoji skin tones (drawn into the emoji before them),
 * as code points: they combine, so no character class may hold them.
 */
const zeroWidth = (cp: number) =>
  (cp >= 0x1160 && cp <= 0x11ff) ||
  (cp >= 0xd7b0 && cp <= 0xd7ff) ||
  (cp >= 0x200b && cp <= 0x200f) ||
  cp === 0x2060 ||
  (cp >= 0xfe00 && cp <= 0xfe0f) ||
  (cp >= 0x1f3fb && cp <= 0x1f3ff) ||
  (cp >= 0xe0100 && cp <= 0xe01ef);
const WIDE =
  /^[\u1100-\u115F\u231A\u231B\u2329\u232A\u23E9-\u23EC\u23F0\u23F3\u25FD\u25FE\u2614\u2615\u2648-\u2653\u267F\u2693\u26A1\u26AA\u26AB\u26BD\u26BE\u26C4\u26C5\u26CE\u26D4\u26EA\u26F2\u26F3\u26F5\u26FA\u26FD\u2705\u270A\u270B\u2728\u274C\u274E\u2753-\u2755\u2757\u2795-\u2797\u27B0\u27BF\u2B1B\u2B1C\u2B50\u2B55\u2E80-\u303E\u3041-\u33FF\u3400-\u4DBF\u4E00-\u9FFF\uA000-\uA4CF\uA960-\uA97F\uAC00-\uD7A3\uF900-\uFAFF\uFE10-\uFE19\uFE30-\uFE6F\uFF00-\uFF60\uFFE0-\uFFE6\u{16FE0}-\u{16FE4}\u{17000}-\u{18CFF}\u{1B000}-\u{1B2FF}\u{1F004}\u{1F0CF}\u{1F18E}\u{1F191}-\u{1F19A}\u{1F200}-\u{1F251}\u{1F300}-\u{1F64F}\u{1F680}-\u{1F6FF}\u{1F7E0}-\u{1F7EB}\u{1F90C}-\u{1F9FF}\u{1FA70}-\u{1FAFF}\u{20000}-\u{3FFFD}]$/u;

function charWidth(char: string): number {
  if (zeroWidth(char.codePointAt(0)!) || COMBINING.test(char)) return 0;
  return WIDE.test(char) ? 2 : 1;
}

/** `text` cut to at most `width` columns, ending in "…" when cut; never half a character. */
export function cutToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  for (const char of text) {
    const w = charWidth(char);
    if (used + w > width - 1) break;
    out += char;
    used += w;
  }
  return `${out}…`;
}

/** `text` and the spaces that make it `width` columns wide. */
export function padToWidth(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - displayWidth(text)));
}

/** Column widths whose line (two spaces between columns) fits `limit`, the widest shrinking first, none below its floor. */
export function fitWidths(widths: number[], floors: number[], limit: number): number[] {
  const out = [...widths];
  let over = out.reduce((sum, w) => sum + w, 0) + 2 * (out.length - 1) - limit;
  while (over > 0) {
    let widest = -1;
    for (let i = 0; i < out.length; i++) if (out[i]! > floors[i]! && (widest < 0 || out[i]! > out[widest]!)) widest = i;
    if (widest < 0) break;
    out[widest]!--;
    over--;
  }
  return out;
}

/** `--port` and `--database` as `spool serve` and `spool doctor` take them: a port 0-65535, a PostgreSQL URL. */
export function portAndDatabase(values: { port?: string | undefined; database?: string | undefined }): { port: number | undefined } {
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port must be 0-65535, got "${values.port}"`);
  }
  if (values.database !== undefined && !/^postgres(ql)?:\/\//.test(values.database)) {
    throw usageError(`--database must be a PostgreSQL URL (postgres://user@host:port/db), got "${values.database}"`);
  }
  return { port };
}
