import { readFileSync } from "node:fs";
import { sql } from "kysely";
import type { HomeLock } from "../home/lock.js";
import { MIGRATION_TABLE } from "../store/migrator.js";
import type { Store } from "../store/store.js";

/** How long /readyz waits for the store before calling the server not ready. */
export const READY_STORE_BOUND_MS = 1_000;

export interface ReadinessSources {
  store: Store;
  /** The names of the migrations the server started with: each must be recorded in the database. */
  migrations: readonly string[];
  lock: HomeLock;
}

/** Why the server is not ready (for the log, never for the HTTP answer), or null when it is. */
export async function notReadyBecause(sources: ReadinessSources, boundMs = READY_STORE_BOUND_MS): Promise<string | null> {
  if (!lockHeld(sources.lock)) return `the home lock ${sources.lock.file} is no longer this server's`;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), boundMs);
  });
  try {
    const applied = await Promise.race([
      sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)}`.execute(sources.store.db).then((r) => r.rows.map((row) => row.name)),
      late,
    ]);
    if (applied === "late") return `the store did not answer within ${boundMs} ms`;
    const have = new Set(applied);
    const missing = sources.migrations.filter((name) => !have.has(name));
    if (missing.length > 0) return `migrations not applied: ${missing.join(", ")}`;
    return null;
  } catch (error) {
    return `the store failed: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the lock file still names this lock's owner (deleted or taken over by another process: not held). */
function lockHeld(lock: HomeLock): boolean {
  try {
    const current = JSON.parse(readFileSync(lock.file, "utf8")) as { pid?: unknown; nonce?: unknown };
    return current.pid === lock.owner.pid && current.nonce === lock.owner.nonce;
  } catch {
    return false;
  }
}
