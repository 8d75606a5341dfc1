import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";
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
  // Checkpoints (copying the WAL into the database, then an fsync) run on a worker thread, so the
  // event loop never stalls on them; the connection's own automatic checkpoint is only a backstop
  // for a worker that cannot keep up (every 1 GB of WAL).
  const checkpointer = file === ":memory:" ? null : startCheckpointer(file);
  sqlite.pragma(`wal_autocheckpoint = ${checkpointer ? 65536 : 16384}`);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  let closed = false;
  return {
    db,
    sqlite,
    file,
    async close() {
      if (closed) return;
      closed = true;
      await checkpointer?.stop();
      // Kysely's destroy() closes the better-sqlite3 handle after pending queries finish.
      await db.destroy();
    },
  };
}

/** What the checkpoint worker runs: a PASSIVE checkpoint (never blocks writers) every `intervalMs`. */
const CHECKPOINT_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const SQLite = require(workerData.driver);
const db = new SQLite(workerData.file);
db.pragma("busy_timeout = 1000");
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // busy or locked: the next round catches up
  }
}, workerData.intervalMs);
parentPort.on("message", () => {
  clearInterval(timer);
  db.close();
  parentPort.postMessage("stopped");
});
`;

/** Starts the checkpoint worker for a database file. */
function startCheckpointer(file: string, intervalMs = 200) {
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(CHECKPOINT_WORKER, { eval: true, workerData: { file, driver, intervalMs } });
  worker.unref();
  let stopping: Promise<void> | null = null;
  return {
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        const done = () => resolve();
        worker.once("message", () => void worker.terminate().then(done, done));
        worker.once("exit", done);
        worker.once("error", done);
        worker.postMessage("stop");
      })),
  };
}
