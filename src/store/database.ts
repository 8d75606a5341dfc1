import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";
import SQLite from "better-sqlite3";
import { Kysely, type SqliteDatabase } from "kysely";
import { type AppendOutcome, appendChunk } from "./chunks.js";
import { storeError } from "./errors.js";
import { FifoSqliteDialect } from "./fifo-dialect.js";
import type { Database } from "./schema.js";

/** A database Spool keeps its state in: SQLite (the default) or PostgreSQL. */
export interface Store {
  readonly kind: "sqlite" | "postgres";
  readonly db: Kysely<Database>;
  /** Where it is, for people: the SQLite file, or the PostgreSQL URL without its password. */
  readonly location: string;
  /** Appends one chunk to a streamed entry (see chunks.ts): O(chunk), group-committed. */
  appendChunk(entryId: number, data: Buffer, seq: number | undefined, open: number): Promise<AppendOutcome>;
  close(): Promise<void>;
}

export interface SqliteStore extends Store {
  readonly kind: "sqlite";
  /** The raw handle, for the migrator and for synchronous hot paths inside one transaction. */
  readonly sqlite: SQLite.Database;
  readonly file: string;
}

export interface StoreOptions {
  /**
   * Bytes the WAL is cut back to once a checkpoint has copied it into the
   * database (`PRAGMA journal_size_limit`); after a burst the checkpoint worker
   * truncates a WAL over this size as soon as it is fully checkpointed.
   */
  walSizeLimit?: number;
}

/** The WAL's size after a checkpoint, by default: a burst may grow it, it does not stay grown. */
export const DEFAULT_WAL_SIZE_LIMIT = 64 * 1024 * 1024;

/** The database and the files SQLite keeps beside it. */
const SIDE_FILES = ["", "-wal", "-shm", "-journal"];

/**
 * Owner-only modes, whatever the umask or the home directory's mode: output
 * of commands and the resume tokens live in these files. SQLite creates the
 * WAL and shared-memory files with the database file's mode, so a 0600
 * database keeps them 0600 when they are recreated.
 */
function restrictModes(file: string): void {
  for (const suffix of SIDE_FILES) {
    try {
      chmodSync(file + suffix, 0o600);
    } catch (error) {
      // Missing is fine; so is a file we may not chmod (another owner, a read-only mount): SQLite then decides.
      if (!["ENOENT", "EPERM", "EROFS"].includes((error as NodeJS.ErrnoException).code ?? "")) throw error;
    }
  }
}

/** Opens (creating if needed) the SQLite database in WAL mode. */
export function openStore(file: string, options: StoreOptions = {}): SqliteStore {
  const walSizeLimit = options.walSizeLimit ?? DEFAULT_WAL_SIZE_LIMIT;
  if (file !== ":memory:") {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // Create the file ourselves (0600) before SQLite does (0644 less the umask), then fix older files' modes.
    if (!existsSync(file)) closeSync(openSync(file, "a", 0o600));
    restrictModes(file);
  }
  const sqlite = new SQLite(file);
  // Larger pages mean fewer overflow pages per 64 KiB chunk; only takes effect on a new database.
  sqlite.pragma("page_size = 16384");
  sqlite.pragma("journal_mode = WAL");
  // NORMAL in WAL mode: a committed transaction survives a process crash; only an OS crash may lose the last ones.
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  // The writer cuts the WAL back to this size when it restarts it after a checkpoint.
  sqlite.pragma(`journal_size_limit = ${walSizeLimit}`);
  // Checkpoints (copying the WAL into the database, then an fsync) run on a worker thread, so the
  // event loop never stalls on them; the connection's own automatic checkpoint is only a backstop
  // for a worker that cannot keep up (every 1 GB of WAL).
  const checkpointer = file === ":memory:" ? null : startCheckpointer(file, walSizeLimit);
  sqlite.pragma(`wal_autocheckpoint = ${checkpointer ? 65536 : 16384}`);
  // The WAL and shared-memory files exist now (WAL mode opened them): 0600 like the database.
  if (file !== ":memory:") restrictModes(file);
  // Queries wait for the one connection first come, first served; a release wakes one waiter, not all of them.
  const db = new Kysely<Database>({ dialect: new FifoSqliteDialect({ database: typedErrors(sqlite) }) });
  let closed = false;
  const store: SqliteStore = {
    kind: "sqlite",
    db,
    sqlite,
    file,
    location: file,
    appendChunk: (entryId, data, seq, open) => appendChunk(store, entryId, data, seq, open),
    async close() {
      if (closed) return;
      closed = true;
      await checkpointer?.stop();
      // Kysely's destroy() closes the better-sqlite3 handle after pending queries finish.
      await db.destroy();
    },
  };
  return store;
}

/**
 * Kysely's view of the connection, with the driver's errors turned into the
 * store's typed ones (a full disk becomes StorageFull) for every query it runs.
 */
function typedErrors(sqlite: SQLite.Database): SqliteDatabase {
  const guard =
    <A extends unknown[], R>(call: (...args: A) => R) =>
    (...args: A): R => {
      try {
        return call(...args);
      } catch (error) {
        throw storeError(error);
      }
    };
  return {
    close: () => sqlite.close(),
    prepare(sql) {
      // SQLite may already have rolled back a transaction a full disk broke; Kysely's ROLLBACK then has nothing to undo
      // and must not replace the StorageFull error with "no transaction is active".
      if (/^\s*rollback\s*$/i.test(sql) && !sqlite.inTransaction)
        return { reader: false, all: () => [], run: () => ({ changes: 0, lastInsertRowid: 0 }), iterate: () => [][Symbol.iterator]() };
      const statement = guard((text: string) => sqlite.prepare(text))(sql);
      return {
        reader: statement.reader,
        all: guard((parameters: readonly unknown[]) => statement.all(...parameters)),
        run: guard((parameters: readonly unknown[]) => statement.run(...parameters)),
        iterate: guard((parameters: readonly unknown[]) => statement.iterate(...parameters)),
      };
    },
  };
}

/**
 * What the checkpoint worker runs: a PASSIVE checkpoint (never blocks writers) every `intervalMs`; once the
 * whole WAL is in the database and the file has grown past `walSizeLimit` (a burst), one TRUNCATE checkpoint
 * that gives up at once if anyone is busy, so the disk space comes back even when no write follows.
 */
const CHECKPOINT_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { statSync } = require("node:fs");
const SQLite = require(workerData.driver);
const db = new SQLite(workerData.file);
db.pragma("busy_timeout = 1000");
db.pragma("journal_size_limit = " + workerData.walSizeLimit);
const walSize = () => {
  try {
    return statSync(workerData.file + "-wal").size;
  } catch {
    return 0;
  }
};
const timer = setInterval(() => {
  try {
    const [result] = db.pragma("wal_checkpoint(PASSIVE)");
    if (result && result.busy === 0 && result.log === result.checkpointed && walSize() > workerData.walSizeLimit) {
      db.pragma("busy_timeout = 0");
      try {
        db.pragma("wal_checkpoint(TRUNCATE)");
      } finally {
        db.pragma("busy_timeout = 1000");
      }
    }
  } catch {
    // busy, locked or full: the next round catches up
  }
}, workerData.intervalMs);
parentPort.on("message", () => {
  clearInterval(timer);
  db.close();
  parentPort.postMessage("stopped");
});
`;

/** Starts the checkpoint worker for a database file. */
function startCheckpointer(file: string, walSizeLimit: number, intervalMs = 200) {
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(CHECKPOINT_WORKER, { eval: true, workerData: { file, driver, intervalMs, walSizeLimit } });
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
