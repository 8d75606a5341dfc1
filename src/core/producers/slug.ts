import { logPath } from "../../protocol/paths.js";
import { type Repositories, UniqueViolation } from "../../store/repositories.js";
import type { EntryRow, NewEntry, RunRow } from "../../store/schema.js";

export { channelPath, logPath, parseLogPath } from "../../protocol/paths.js";

/** A path-safe slug from a command: lowercase words joined by '-', never '_' (channel paths add `_N`). */
export function slugFromCommand(command: string): string {
  const slug = command
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  return slug || "cmd";
}

/**
 * Inserts a producer's log entry under the first free slug of `command` in the run's turn (`slug`, then
 * `slug-2`, …): it starts after the suffixes the turn already uses (one query, not one failed insert per
 * taken slug), and when another proposal takes the same one a moment earlier, tries the next.
 */
export async function insertUnderFreeSlug(
  entries: Repositories["entries"],
  run: RunRow,
  tool: string,
  command: string,
  row: (slug: string, path: string) => Omit<NewEntry, "path">,
): Promise<EntryRow> {
  const base = slugFromCommand(command);
  const prefix = logPath(run.turn, tool, base);
  let start = 1;
  for (const path of await entries.pathsWithPrefix(run.id, prefix)) {
    const suffix = path === prefix ? 1 : Number(path.slice(prefix.length + 1));
    if (Number.isInteger(suffix)) start = Math.max(start, suffix + 1);
  }
  for (let n = start; ; n++) {
    const slug = n === 1 ? base : `${base}-${n}`;
    const path = logPath(run.turn, tool, slug);
    try {
      return await entries.insertEntry({ ...row(slug, path), path });
    } catch (error) {
      if (error instanceof UniqueViolation) continue;
      throw error;
    }
  }
}
