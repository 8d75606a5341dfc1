import { realpathSync } from "node:fs";
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
