import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";

/*
 * Every Spool home, token file, database and socket of this user on this machine (SPEC §7 "Sandbox modes", issue 54):
 * each Spool process records the paths it keeps its credentials and state in, and every sandbox built here hides all
 * of them, not only its own server's — another server's home (a second server of a pair, a test server) held a token
 * that approved commands, and its socket accepted connections from inside the sandbox.
 *
 * One small file per path, named by a digest of it, so that recording is idempotent and races with nothing; a path
 * whose directory no longer exists is forgotten when the registry is read (a removed test home). A path that is not
 * there now (a database's WAL, a stopped server's socket) stays recorded and is hidden once it is; a home of a
 * stopped server stays too: its token works again when the server does.
 */

/** The registry's directory: $XDG_STATE_HOME/spool/state-paths (default ~/.local/state), or SPOOL_REGISTRY. */
export function registryDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SPOOL_REGISTRY) return resolve(env.SPOOL_REGISTRY);
  const state = env.XDG_STATE_HOME && isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : join(homedir(), ".local", "state");
  return join(state, "spool", "state-paths");
}

const entryName = (path: string) => createHash("sha256").update(path).digest("hex").slice(0, 32);

/**
 * Records `paths` (made absolute) in the registry. Never throws: a home that cannot be recorded (a read-only home
 * directory) must not stop a server; the caller's own sandbox hides its own paths regardless.
 */
export function recordStatePaths(paths: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const dir = registryDir(env);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const path of new Set(paths.map((p) => resolve(p)))) {
      const file = join(dir, entryName(path));
      if (existsSync(file)) continue;
      // Written under a private name, then renamed: a reader never finds half a path.
      const draft = `${file}.${process.pid}.tmp`;
      writeFileSync(draft, path, { mode: 0o600 });
      renameSync(draft, file);
    }
  } catch {
    // not recorded: see above
  }
}

/** The path each registry entry's file holds, by the file, as this process read it (sandboxes read the registry at every start). */
const entryPaths = new Map<string, string>();

/** The paths recorded that exist now, and the registry itself; those whose directory no longer exists are forgotten. */
export function recordedStatePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const dir = registryDir(env);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const paths = [dir];
  for (const name of names) {
    const file = join(dir, name);
    // An entry's file never changes once written (its name is its path's): read once per process.
    let path = entryPaths.get(file);
    if (path === undefined) {
      try {
        path = readFileSync(file, "utf8");
      } catch {
        continue;
      }
      if (!name.endsWith(".tmp")) entryPaths.set(file, path);
    }
    if (!isAbsolute(path) || name.endsWith(".tmp")) continue;
    if (existsSync(path)) paths.push(path);
    else if (!existsSync(dirname(path)))
      try {
        entryPaths.delete(file);
        unlinkSync(file);
      } catch {
        // forgotten by another reader meanwhile
      }
  }
  return paths;
}
