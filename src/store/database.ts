import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import type { Database } from "./schema.js";

export interface Store {
  readonly db: Kysely<Database>;
  /** The raw handle, for the migrator and for synchronous hot paths inside one transaction. */
  readonly sqlite: SQLite.Database;
  readonly file: string;
  close(): Promise<void>;
}

/** Opens (creating if needed) the SQLite database in WAL mode. */
export function openStore(file: string): Store {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  const sqlite = new SQLite(file);
  // Larger pages mean fewer overflow pages per 64 KiB chunk; only takes effect on a new database.
  sqlite.pragma("page_size = 16384");
  sqlite.pragma("journal_mode = WAL");
  // NORMAL in WAL mode: a committed transaction survives a process crash; only an OS crash may lose the last ones.
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  // Checkpoint every ~64 MB of WAL instead of every 4 MB: streamed output is written in large sequential bursts.
  sqlite.pragma("wal_autocheckpoint = 16384");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  let closed = false;
  return {
    db,
    sqlite,
    file,
    async close() {
      if (closed) return;
      closed = true;
      // Kysely's destroy() closes the better-sqlite3 handle after pending queries finish.
      await db.destroy();
    },
  };
}
