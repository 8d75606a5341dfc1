import { spawn } from "node:child_process";
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SpoolClient } from "../client/spool-client.js";
import { ConnectError, unixSocketUrl } from "../client/ws-transport.js";
import { clientCredentialFile, loadConfig } from "../config/config.js";
import type { Logger } from "../logger.js";
import { program, programArgs } from "../program.js";

/** Where the Spool server of the bridge is, and whether `--server` named it (then nothing is started). */
export interface ServerLocation {
  /** The server named, or the home's over TCP ("" when it listens on a port chosen at start); see `serverUrl`. */
  url: string;
  /** The home's Unix socket, used whenever it is there unless a server was named. */
  socketPath: string;
  tokenFile: string;
  /** The home's client credential the token file is (`--credential NAME`), for what an error says; else undefined. */
  credential?: string | undefined;
  home: string;
  explicit: boolean;
}

export interface ServerFlags {
  server?: string | undefined;
  home?: string | undefined;
  "token-file"?: string | undefined;
  /** A credential `spool mcp add` / `spool acp add` kept in the home for this client: read instead of any token file. */
  credential?: string | undefined;
}

/** A client credential (`--credential NAME`) the home does not hold: nothing can start without it. */
export class MissingCredential extends Error {
  override readonly name = "MissingCredential";
}

/** What a missing client credential's error says: where it was looked for, and what makes one. */
function missing(home: string, name: string, file: string): string {
  return `the home ${home} holds no credential "${name}" (${file}): \`spool mcp add CLIENT\` or \`spool acp add CLIENT\` makes one, and \`spool token list\` shows who holds one`;
}

/**
 * The server the bridge talks to: `--server`/SPOOL_SERVER, else the one the home's configuration describes. A client
 * credential named (`--credential`) must be in the home (MissingCredential); given with `--token-file` it is an error.
 */
export function locateServer(flags: ServerFlags, env: NodeJS.ProcessEnv = process.env): ServerLocation {
  const config = loadConfig(flags.home ? { home: flags.home } : {}, env);
  const explicit = flags.server ?? env.SPOOL_SERVER;
  if (flags.credential !== undefined && flags["token-file"] !== undefined) throw new Error("--credential and --token-file name two credentials: give one");
  // A client's own credential never falls back to another (the home's token file, $SPOOL_TOKEN_FILE): missing, it is an error.
  const tokenFile =
    flags.credential !== undefined ? clientCredentialFile(config.home, flags.credential) : (flags["token-file"] ?? env.SPOOL_TOKEN_FILE ?? config.tokenFile);
  if (flags.credential !== undefined && !existsSync(tokenFile)) throw new MissingCredential(missing(config.home, flags.credential, tokenFile));
  const own = { socketPath: config.socketPath, tokenFile, credential: flags.credential, home: config.home };
  if (explicit) return { url: explicit, ...own, explicit: true };
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const url = config.port === 0 ? "" : `ws://${host.includes(":") ? `[${host}]` : host}:${config.port}/`;
  return { url, ...own, explicit: false };
}

/**
 * Where to connect now: the named server, else the home's Unix socket when it is there (SPEC §2c), else
 * the home's TCP port (where the server proves it holds the token before it is sent). Asked at every connection, so
 * a bridge reconnecting to a restarted server finds its socket.
 */
export function serverUrl(location: ServerLocation): string {
  if (location.explicit) return location.url;
  if (existsSync(location.socketPath)) return unixSocketUrl(location.socketPath);
  if (location.url === "") throw new Error(`The server of ${location.home} listens on a port chosen at start (port 0) and has no socket; pass --server URL`);
  return location.url;
}

/** Connects once and pings: the server answers with this token. */
async function probe(location: ServerLocation): Promise<string> {
  let token: string;
  try {
    token = readFileSync(location.tokenFile, "utf8").trim();
  } catch {
    if (location.credential !== undefined) throw new MissingCredential(missing(location.home, location.credential, location.tokenFile));
    throw new Error(`cannot read the token file ${location.tokenFile}`);
  }
  const client = await SpoolClient.connect(serverUrl(location), { token });
  try {
    await client.request("ping", {});
  } finally {
    client.close();
  }
  return token;
}

const SPOOL_BIN = fileURLToPath(new URL("../../bin/spool.js", import.meta.url));

/**
 * The variables and node flags bin/spool.js's shebang gives itself (glibc malloc settings, a small young generation):
 * the server started here runs as `spool serve` does.
 */
function serverLaunch(): { flags: string[]; env: Record<string, string> } {
  const shebang = readFileSync(SPOOL_BIN, "utf8").split("\n", 1)[0] ?? "";
  const m = /^#!\S*env -S((?: +[A-Za-z_][A-Za-z0-9_]*=\S*)*) node((?: +-\S+)*)\s*$/.exec(shebang);
  const vars = (m?.[1] ?? "").split(" ").filter(Boolean);
  return {
    flags: m?.[2]?.split(" ").filter(Boolean) ?? [],
    env: Object.fromEntries(vars.map((v) => [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)])),
  };
}

/** Whether a process still runs (a zombie, dead but not yet reaped, does not). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** What a file got past `from` (its last `max` bytes), for an error message. */
function tailSince(file: string, from: number, max = 2000): string {
  try {
    const text = readFileSync(file).subarray(from).toString("utf8").trim();
    return text.length > max ? `…${text.slice(-max)}` : text;
  } catch {
    return "";
  }
}

/** How long a server started here has to answer. */
const START_TIMEOUT_MS = 30_000;

/** A server being found or started: `launched` and `ready` settle in that order. */
export interface ServerStart {
  /**
   * Settles once no process this one started for the server is alive (at once when one answered): from then on
   * the server is no descendant of this process, whenever a client takes its snapshot of the process table.
   */
  launched: Promise<void>;
  /** The URL and token of the server once it answers (and, for the server's own /acp, its door); rejects when none does. */
  ready: Promise<{ url: string; token: string; door?: string | undefined }>;
}

/** How long `launched` waits for the launcher to exit (it exits as soon as it has started the server). */
const LAUNCHER_EXIT_TIMEOUT_MS = 10_000;

/**
 * The token of a server that answers at `location`. When none does and the location is the home's own
 * (no `--server`), starts `spool serve` for the home as a detached process (it outlives the bridge, so
 * other clients and later bridges share it), its output appended to `serve.log` in the home, and waits
 * until it answers.
 */
export async function ensureServer(location: ServerLocation, log: Logger): Promise<{ url: string; token: string }> {
  return findOrStartServer(location, log).ready;
}

/** ensureServer in two steps: `launched` tells when the launcher of a server started here has exited. */
export function findOrStartServer(location: ServerLocation, log: Logger): ServerStart {
  let settleLaunched!: () => void;
  const launched = new Promise<void>((resolve) => {
    settleLaunched = resolve;
  });
  const ready = findOrStart(location, log, settleLaunched).finally(settleLaunched);
  return { launched, ready };
}

async function findOrStart(location: ServerLocation, log: Logger, launcherGone: () => void): Promise<{ url: string; token: string }> {
  // A client's credential that is not there is not fixed by starting a server: it is the error, at once.
  if (location.credential !== undefined && !existsSync(location.tokenFile)) await probe(location);
  let firstError: unknown;
  try {
    const token = await probe(location);
    return { url: serverUrl(location), token };
  } catch (error) {
    // A server answers and refuses a client's credential (revoked, expired): starting another would not help.
    if (location.credential !== undefined && error instanceof ConnectError && (error.status === 401 || error.unproven))
      throw new Error(
        `the Spool server ${location.explicit ? `at ${location.url}` : `of ${location.home}`} refuses the credential "${location.credential}" (revoked or expired: spool token list --revoked); \`spool mcp add CLIENT\` or \`spool acp add CLIENT\` makes the client a new one`,
      );
    if (location.explicit) throw new Error(`No Spool server answers at ${location.url}: ${error instanceof Error ? error.message : String(error)}`);
    firstError = error;
  }
  mkdirSync(location.home, { recursive: true, mode: 0o700 });
  const logFile = join(location.home, "serve.log");
  log.info(
    `no server answers at ${location.url || location.socketPath} (${firstError instanceof Error ? firstError.message : String(firstError)}); starting spool serve, output in ${logFile}`,
  );
  const fd = openSync(logFile, "a", 0o600);
  const logStart = fstatSync(fd).size;
  let exit: { code: number | null } | null = null;
  let serverPid = 0;
  try {
    const launch = serverLaunch();
    // Started by a launcher that exits at once: the server is no child (nor descendant) of this process and in a
    // session and process group of its own, so a client that ends its agent's whole process tree (acpx walks the
    // children) or group does not end the server the README says goes on. While the launcher lives the server is
    // its child, so a snapshot of the process table taken then shows it as a descendant: `launched` says when
    // that can no longer be (acpx 0.19 kills, when it exits, every process it once saw descend from its agent).
    const child = spawn(
      process.execPath,
      [
        ...programArgs(program(import.meta.url, "launcher-main")),
        JSON.stringify([process.execPath, [...launch.flags, SPOOL_BIN, "serve", "--home", location.home]]),
      ],
      {
        detached: true,
        stdio: ["ignore", fd, fd, "pipe"],
        env: { ...process.env, ...launch.env },
      },
    );
    const timer = setTimeout(launcherGone, LAUNCHER_EXIT_TIMEOUT_MS);
    timer.unref();
    const gone = () => {
      clearTimeout(timer);
      launcherGone();
    };
    child.once("error", gone);
    child.once("exit", (code) => {
      if (code !== 0) exit = { code };
      gone();
    });
    const pidPipe = child.stdio[3] as NodeJS.ReadableStream | null;
    pidPipe?.on("data", (data: Buffer) => {
      const pid = Number.parseInt(data.toString("utf8"), 10);
      if (Number.isInteger(pid) && pid > 0) serverPid = pid;
    });
    pidPipe?.on("error", () => undefined);
    (pidPipe as unknown as { unref?: () => void } | null)?.unref?.();
    child.unref();
  } finally {
    closeSync(fd);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  let delay = 50;
  for (;;) {
    try {
      const token = await probe(location);
      // Never a server nobody knows of: said whatever the log level, with where it is and whose home it serves.
      process.stderr.write(
        `spool: no Spool server answered for the home ${location.home}, so its own was started (spool serve --home ${location.home}${serverPid ? `, pid ${serverPid}` : ""}) at ${serverUrl(location)}; its output is in ${logFile}, and it goes on after this client ends. Decide its proposals with SPOOL_HOME=${location.home} spool pending, or on the page (spool open).\n`,
      );
      return { url: serverUrl(location), token };
    } catch (error) {
      // The server started here died: what it said is the error, at once (a server another bridge started at the
      // same moment may hold the home, so it is probed once more first).
      if (serverPid > 0 && !running(serverPid)) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        try {
          return { url: serverUrl(location), token: await probe(location) };
        } catch {
          const said = tailSince(logFile, logStart);
          throw new Error(`Started spool serve for ${location.home}, but it exited${said ? `:\n${said}` : ` (see ${logFile})`}`);
        }
      }
      // A server another bridge started at the same moment holds the home: ours exits, theirs answers soon.
      if (Date.now() > deadline) {
        const why = exit ? `its launcher exited with ${(exit as { code: number | null }).code}` : "it did not answer";
        throw new Error(
          `Started spool serve for ${location.home}, but ${why} within ${START_TIMEOUT_MS / 1000} s (see ${logFile}): ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(500, delay * 2);
    }
  }
}
