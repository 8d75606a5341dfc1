import { lstatSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { invalid } from "../refusals.js";

/**
 * A cwd as a path relative to the project root ("" is the root), judged where it really leads: the root and
 * the directory are resolved through symbolic links (`realpath`), so a link inside the root cannot lead
 * outside it. A directory that does not exist yet is judged by its deepest existing ancestor. The relative
 * path returned is the resolved one, so what runs is what was checked. Outside the root only when the
 * configuration allows it.
 */
export function confineCwd(project: ProjectRef, cwd: string | undefined, allowOutside: boolean): string {
  if (cwd === undefined) return "";
  if (cwd.includes("\0")) throw invalid("cwd", "a directory must not contain NUL bytes");
  const root = realPath(project.root);
  const target = realPath(resolve(project.root, cwd));
  if (root === null || target === null) throw invalid("cwd", `"${cwd}" does not resolve to a directory (a dangling or looping link, or a file on the way)`);
  const rel = relative(root, target);
  if (!allowOutside && (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel))) {
    throw invalid("cwd", `"${cwd}" is outside the project root (limits.allowCwdOutsideRoot is off)`);
  }
  return rel;
}

/**
 * The real path of `path`: the realpath of its deepest existing ancestor, then the names that do not exist
 * yet. Null when it cannot be resolved: a dangling link (where it leads could appear later), a loop, a file
 * where a directory should be, or no permission to look.
 */
function realPath(path: string): string | null {
  const missing: string[] = [];
  for (let current = path; ; ) {
    try {
      return join(realpathSync.native(current), ...missing);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") return null;
      try {
        lstatSync(current);
        return null; // it exists, yet does not resolve: a dangling symbolic link
      } catch {
        // really missing: judge it by its parent
      }
      const parent = dirname(current);
      if (parent === current) return null;
      missing.unshift(basename(current));
      current = parent;
    }
  }
}
