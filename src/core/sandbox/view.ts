import { realpathSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, normalize } from "node:path";
import type { SpoolConfig } from "../../config/config.js";
import type { SandboxInfo } from "../../protocol/runner.js";
import type { SandboxModeName } from "../../protocol/sandbox.js";
import type { SandboxView } from "../../protocol/views.js";
import { SpoolError } from "../../rpc/errors.js";

/*
 * A proposal's view (SPEC §7 "What a command sees"), decided at proposal time so that every client shows it before
 * the decision: what its runner builds (the system directories, a private home, the toolchains its PATH names: the
 * runner's `sandbox.view`, a claim for a remote runner) and what the configuration adds (`sandboxView`: the
 * project's own, else every project's). The runner is sent the toolchains and paths shown and binds those.
 */

/** The paths config.json `sandboxView` adds to a project's sandboxed commands: the project's own entry, else every project's. */
export function configuredView(config: SpoolConfig, project: string): { read: string[]; write: string[] } {
  const own = config.sandboxView.projects[project];
  return own ? { read: own.read ?? [], write: own.write ?? [] } : { read: config.sandboxView.read, write: config.sandboxView.write };
}

/** The view fact of a proposal in `mode` going to a runner whose sandbox is `info` (null: not known here); none for full. */
export function viewFact(config: SpoolConfig, project: string, mode: SandboxModeName, info: SandboxInfo | null): SandboxView | null {
  if (mode === "full") return null;
  const view = info?.view;
  const added = configuredView(config, project);
  refuseServerState(config, [...added.read, ...added.write]);
  return {
    system: view?.system ?? null,
    image: view?.image ?? null,
    home: view?.home ?? null,
    toolchains: view?.toolchains ?? null,
    read: added.read,
    write: added.write,
    ...(view?.project === false ? { project: false as const } : {}),
  };
}

/** The server's own state, which no sandboxed command may see: its home (token, database, config) and its token file and database wherever they are. */
export function serverState(config: SpoolConfig): string[] {
  const { home, tokenFile, dbFile, databaseUrl } = config;
  const database = databaseUrl ? [] : [dbFile, `${dbFile}-wal`, `${dbFile}-shm`];
  return [...new Set([home, tokenFile, join(home, "config.json"), join(home, "processes"), ...database])];
}

/** The real path of `path`: its deepest existing ancestor resolved through links, then the names not there yet. */
function realOrPlanned(path: string): string {
  const missing: string[] = [];
  for (let current = normalize(path); ; current = dirname(current)) {
    try {
      return join(realpathSync.native(current), ...missing);
    } catch {
      if (dirname(current) === current) return normalize(path);
      missing.unshift(basename(current));
    }
  }
}

const within = (path: string, dir: string) => dir === "/" || path === dir || path.startsWith(`${dir}/`);

/**
 * VIEW_HOLDS_SECRET when a configured view path (`~/` read as this server's home: the embedded runner's) holds the
 * server's own state or lies in it. The runner checks again where the command runs (its own state, the registry).
 */
function refuseServerState(config: SpoolConfig, paths: readonly string[]): void {
  if (paths.length === 0) return;
  const secrets = serverState(config).map(realOrPlanned);
  for (const path of paths) {
    const real = realOrPlanned(path.startsWith("~/") ? join(homedir(), path.slice(2)) : path);
    const secret = secrets.find((s) => within(s, real) || within(real, s));
    if (secret)
      throw new SpoolError(
        "VIEW_HOLDS_SECRET",
        `config.json sandboxView names ${path}, which ${within(secret, real) ? "holds" : "lies in"} the server's own ${secret} (its home, token file or database): a sandboxed command must not see it; nothing was proposed — remove it from sandboxView`,
        { secret, path },
      );
  }
}
