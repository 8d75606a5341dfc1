import { realpathSync } from "node:fs";
import { userInfo } from "node:os";
import { basename, dirname, join, normalize } from "node:path";

/*
 * Where a path really is, for the checks that keep what Spool trusts apart from what a command sees: the sandbox's
 * view (src/runners/sandbox/view.ts) and the home that may not lie in a project (src/home/in-project.ts) judge paths
 * the same way, so a path one of them lets through the other does not read differently.
 */

/** Whether `path` is `dir` or lies under it (both absolute and normalized). */
export function within(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

/**
 * The real path of `path` (absolute) where it exists, else its deepest existing ancestor's real path with the rest
 * appended: a directory not made yet is judged by where it will be made.
 */
export function realOrPlanned(path: string): string {
  const missing: string[] = [];
  let current = normalize(path);
  for (;;) {
    try {
      return join(realpathSync(current), ...missing);
    } catch {
      if (dirname(current) === current) return join(current, ...missing);
      missing.unshift(basename(current));
      current = dirname(current);
    }
  }
}

let account: { home: string | null } | null = null;

/**
 * This process's account's home directory as the password database has it (not $HOME), or null where the account has
 * none (a container's uid with no entry). Read once and kept for the process's life, as a login shell keeps it: a
 * lookup reads and parses the database (or asks NSS) — a sandbox's start asked three times, ~1.5 % of a busy runner's
 * CPU — and a record's place (the views beside it) must not move while the process lives.
 */
export function accountHome(): string | null {
  if (!account) {
    try {
      account = { home: userInfo().homedir || null };
    } catch {
      account = { home: null };
    }
  }
  return account.home;
}
