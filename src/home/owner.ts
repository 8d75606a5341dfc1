import { chmodSync, lstatSync, type Stats, statSync } from "node:fs";
import { isAbsolute } from "node:path";

/*
 * The home is the owner's (SPEC §2, issue 45), as OpenSSH's StrictModes holds ~/.ssh: before `spool serve` reads
 * a token, opens a database or loads a plugin, every file it trusts must be its own user's and writable by no one
 * else. Another user who made the home (or can write in it) could swap the socket the clients send their token to,
 * or write a config.json whose plugin the server runs as its user.
 */

/** A file the server trusts is another user's, or others may write it: the server refuses to start. */
export class HomeNotOwned extends Error {
  override readonly name = "HomeNotOwned";
}

export interface OwnedPaths {
  home: string;
  configFile: string;
  tokenFile: string;
  socketPath: string;
  dbFile: string;
  /** Plugins the server loads: paths are checked, package names (resolved by Node from node_modules) are not. */
  plugins: readonly string[];
}

const uid = () => process.getuid?.() ?? null;

function lstatOrNull(path: string, follow = false): Stats | null {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** Why `path` may not be trusted, or null: its owner is not one of `owners`, it is a link, or (`modeChecked`) group or others may write it. */
function untrusted(path: string, stat: Stats, what: string, owners: readonly number[], modeChecked = true): string | null {
  if (stat.isSymbolicLink()) return `${what} ${path} is a symbolic link; it must be the file itself`;
  if (!owners.includes(stat.uid)) return `${what} ${path} is owned by uid ${stat.uid}, not by this server's user (uid ${owners[0]})`;
  if (modeChecked && (stat.mode & 0o022) !== 0)
    return `${what} ${path} is writable by ${(stat.mode & 0o002) !== 0 ? "every user" : "its group"} (mode ${(stat.mode & 0o777).toString(8).padStart(4, "0")})`;
  return null;
}

/**
 * Refuses (HomeNotOwned, saying how to fix it) a home, config.json, token file, database, socket or plugin file
 * that is not this user's or that group or others may write; a home only readable by others is made private (0700),
 * as before. A home that does not exist yet is made by the server itself. Plugin files may also be root's (a system
 * install). Where the platform has no user ids (Windows), nothing is checked.
 */
export function checkHomeOwned(paths: OwnedPaths, warn: (message: string) => void = () => {}): void {
  const me = uid();
  if (me === null) return;
  const problems: string[] = [];
  const home = lstatOrNull(paths.home);
  if (home) {
    const why = home.isDirectory() ? untrusted(paths.home, home, "the Spool home", [me]) : `the Spool home ${paths.home} is not a directory`;
    if (why) problems.push(why);
    else if ((home.mode & 0o077) !== 0) {
      chmodSync(paths.home, 0o700);
      warn(`made ${paths.home} private (0700): the Spool home holds the token, the database and the server's socket`);
    }
  }
  // The database's mode is the store's to fix (0600 at every open); its owner is checked here.
  const files: [string, string, boolean][] = [
    [paths.configFile, "config.json", true],
    [paths.tokenFile, "the token file", true],
    [paths.dbFile, "the database", false],
    [paths.socketPath, "the socket", true],
  ];
  for (const [path, what, modeChecked] of files) {
    const stat = lstatOrNull(path);
    const why = stat && untrusted(path, stat, what, [me], modeChecked);
    if (why) problems.push(why);
  }
  for (const plugin of paths.plugins.filter((p) => isAbsolute(p))) {
    // A plugin installed by the system (root's) is trusted as OpenSSH trusts root's files; a link to one is judged by the file it leads to.
    const stat = lstatOrNull(plugin, true);
    const why = stat && untrusted(plugin, stat, "the plugin", [me, 0]);
    if (why) problems.push(why);
  }
  if (problems.length === 0) return;
  throw new HomeNotOwned(
    `Refusing to start: ${problems.join("; ")}. Everything the server trusts (the home, its config.json, token, database and socket, and the plugins it loads) must be owned by this user (uid ${me}) and writable by no one else, or another user could run code as this one or take the token. If this is your home, check what is in it, then: chown -R ${me} ${paths.home} && chmod 700 ${paths.home} && chmod go-w ${paths.home}/config.json; else choose another --home (SPOOL_HOME).`,
  );
}
