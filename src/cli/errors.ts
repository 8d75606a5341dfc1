import { ConnectionClosedError, SpoolRpcError } from "../client/spool-client.js";
import { ConnectError } from "../client/ws-transport.js";
import { nearest } from "../protocol/nearest.js";
import { EXIT } from "./exit-codes.js";
import { screenSafe } from "./terminal-writer.js";

export { EXIT, exitCodesHelp } from "./exit-codes.js";

/** An error the CLI reports as it is, with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);

/** How many of the names there are an unknown name's error lists. */
const NAMES_SHOWN = 20;

/**
 * The one error for a name that names nothing (a project, a model, a --format, an event): the nearest name as a
 * "did you mean", then the names there are. `code`: 4 for what does not exist on the server (a project, a model),
 * 2 for a value outside the CLI's own list (a format, an event).
 */
export function unknownName(
  what: string,
  typed: string,
  known: readonly string[],
  options: { code?: number; flag?: string; next?: string; owner?: string } = {},
): CliError {
  const near = nearest(typed, known);
  const list =
    known.length === 0 ? "there are none" : `there are: ${known.slice(0, NAMES_SHOWN).map(screenSafe).join(", ")}${known.length > NAMES_SHOWN ? ", …" : ""}`;
  return new CliError(
    `${options.flag ? `${options.flag} ${screenSafe(typed)}: ` : ""}${options.owner ? `${options.owner} has no` : "no"} ${what} "${screenSafe(typed)}"${near ? ` — did you mean "${screenSafe(near)}"?` : ""} (${options.owner ? list.replace("there are", "it has") : list})${options.next ? `. ${options.next}` : ""}`,
    options.code ?? EXIT.notFound,
  );
}

/** Refuses project names the server has none of (that the credential may see), each with a "did you mean". */
export async function knownProjects(
  client: { call(method: "project/list", params: { limit?: number }): Promise<{ projects: { name: string }[] }> },
  names: readonly string[],
  flag = "--project",
): Promise<void> {
  if (names.length === 0) return;
  const known = (await client.call("project/list", { limit: 1000 })).projects.map((p) => p.name);
  const missing = names.find((name) => !known.includes(name));
  if (missing !== undefined) throw unknownName("project", missing, known, { flag, next: "`spool runs --all` shows every project's runs" });
}

/** HTTP answers to the WebSocket upgrade that mean the token or the Origin was refused. */
const HTTP_UNAUTHORIZED = 401;
const HTTP_FORBIDDEN = 403;

/** Where the CLI was pointed, for messages that say what to do. */
export interface Target {
  url: string;
  tokenFile: string;
}

/** What the person reads for an error, and the exit code: the next step, not the protocol's internals. */
export function explain(error: unknown, target: Target | null): { message: string; code: number } {
  if (error instanceof CliError) return { message: error.message, code: error.exitCode };
  if (error instanceof ConnectError) {
    const url = target?.url ?? "the server";
    if (error.status === HTTP_UNAUTHORIZED) {
      return {
        message: `wrong token for ${url} — the server's token is in its home's token file ($SPOOL_HOME/token; used: ${target?.tokenFile ?? "?"})`,
        code: EXIT.connection,
      };
    }
    if (error.status === HTTP_FORBIDDEN)
      return { message: `${url} refused this client (HTTP ${HTTP_FORBIDDEN}: its Origin is not allowed)`, code: EXIT.connection };
    if (error.status !== undefined) return { message: `${url} refused the connection (HTTP ${error.status})`, code: EXIT.connection };
    if (error.unproven) return { message: error.message, code: EXIT.connection };
    return { message: `no server at ${url} — start one with \`spool serve\` (or pass --server URL)`, code: EXIT.connection };
  }
  if (error instanceof ConnectionClosedError) {
    return { message: "lost the connection to the server before it answered; check it with `spool runs`", code: EXIT.connection };
  }
  // The server's words (which may quote names and text from anyone) reach the terminal made safe.
  if (error instanceof SpoolRpcError) {
    const { message, code } = rpcMessage(error);
    return { message: screenSafe(message), code };
  }
  if (isParseArgsError(error)) return { message: `${(error as Error).message}`, code: EXIT.usage };
  const sys = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (sys?.code === "EADDRINUSE") {
    return {
      message: `${sys.address ?? "the address"}:${sys.port ?? "?"} is already in use — is another server running there? Pick another with --port (0: any free one)`,
      code: EXIT.failed,
    };
  }
  if (sys?.code === "EACCES" && sys.syscall === "listen") {
    return {
      message: `not allowed to listen on ${sys.address ?? "the address"}:${sys.port ?? "?"} — ports below 1024 need privileges; pick another with --port`,
      code: EXIT.failed,
    };
  }
  return { message: screenSafe(error instanceof Error ? error.message : String(error)), code: EXIT.failed };
}

function rpcMessage(error: SpoolRpcError): { message: string; code: number } {
  const data = (error.data ?? {}) as { code?: string; issues?: { path?: string; message: string }[] };
  switch (data.code) {
    case "INVALID_PARAMS": {
      const issues = (data.issues ?? []).map((i) => `${i.path ? `${i.path}: ` : ""}${i.message}`);
      return { message: issues.length ? issues.join("; ") : error.message.replace(/^Invalid params for [^:]*:?\s*/, ""), code: EXIT.usage };
    }
    case "NOT_FOUND":
      return { message: error.message, code: EXIT.notFound };
    case "FORBIDDEN":
      // A setting's rule (data.rule) says itself who may; a role or scope below the method's is a credential to ask for.
      if ((error.data as { rule?: unknown } | undefined)?.rule !== undefined) return { message: error.message, code: EXIT.failed };
      return { message: `${error.message} — ask an admin for a credential that may (spool token create NAME --role ROLE)`, code: EXIT.failed };
    case "UNAUTHORIZED":
      return { message: "wrong token — the server's token is in $SPOOL_HOME/token", code: EXIT.connection };
    default:
      return { message: error.message, code: EXIT.failed };
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}
