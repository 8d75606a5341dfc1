import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import type SQLite from "better-sqlite3";
import { Kysely, type SqliteDatabase } from "kysely";
import { storeError } from "../errors.js";
import type { Database } from "../schema.js";
import { activityClock, noteActivity, READ, WROTE } from "./activity.js";
import { type BusyRetryOptions, DEFAULT_BUSY_RETRY } from "./busy.js";
import { checkpointerOnDemand, trackCheckpointer } from "./checkpointer.js";
import { appendChunk } from "./chunks.js";
import { FifoSqliteDialect } from "./fifo-dialect.js";
import { openSqlite } from "./sqlite-driver.js";
import type { SqliteStore } from "./sqlite-store.js";

export type { AppendOutcome, Store } from "../store.js";
export { type CheckpointStats, checkpointStats, onCheckpointHold } from "./checkpointer.js";
export type { SqliteStore } from "./sqlite-store.js";

export interface StoreOptions {
  /**
   * Bytes the WAL is cut back to once writes have been quiet for `walQuietMs`: the checkpoint worker then
   * truncates a fully checkpointed WAL over this size, so a burst does not leave a large file behind.
   */
  walSizeLimit?: number;
  /**
   * The WAL's bound while writes go on: once it is over this size the checkpoint worker, right after a checkpoint
   * that caught up, has SQLite start it over (`wal_checkpoint(RESTART)`), so the writer's next commit writes from
   * the file's beginning instead of growing it. The file is reused, not truncated: only the worker truncates it,
   * once writes are quiet (`walSizeLimit`).
   */
  walBusyLimit?: number;
  /** Milliseconds without a commit before the worker truncates the WAL. */
  walQuietMs?: number;
  /**
   * Once writes have stopped, the worker's copy of the WAL (and the quiet-time truncation) waits while the server
   * reads, for at most this many milliseconds (SPEC.md, the WAL): a steady reader does not put it off for ever.
   */
  walYieldMaxMs?: number;
  /**
   * Once writes have stopped, the worker's copy waits this many milliseconds after the last write even with no read
   * yet (the reads that follow a burst come a few milliseconds after its end): a round that falls between the two
   * does not begin a copy of tens of MB just before them. Reads make it wait longer, as above.
   */
  walSettleMs?: number;
  /**
   * A read within this many milliseconds is a server that reads still, which the worker's copy waits for (above);
   * tests on a busy machine, whose reads a starved thread may space further apart, set more.
   */
  walReadsQuietMs?: number;
  /**
   * The WAL's size at which the checkpoint worker starts (0: with the store); below it nothing needs checkpointing
   * yet. Default: 4 MiB, or the smaller of walSizeLimit and walBusyLimit if that is less.
   */
  walCheckpointFromBytes?: number;
  /** SQLite's busy timeout for the server's connection: how long a statement waits, blocking, for a lock. */
  busyTimeoutMs?: number;
  /** How writes refused as busy or locked after that are tried again, asynchronously. */
  busyRetry?: BusyRetryOptions;
  /**
   * Called when the checkpoint worker ends on an error it did not catch. It is not started again: the connection's
   * own automatic checkpoint bounds the WAL from then on (every 256 MiB), and the store goes on.
   */
  onCheckpointerError?: (error: Error) => void;
}

/** The WAL's size once writes are quiet, by default: a burst may grow it, it does not stay grown. */
export const DEFAULT_WAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** The WAL's bound while writes go on, by default (it is passed by what comes in during one checkpoint round). */
export const DEFAULT_WAL_BUSY_LIMIT = 64 * 1024 * 1024;
/** The WAL's size at which the checkpoint worker starts, by default: 4 MiB (256 pages). */
export const DEFAULT_WAL_CHECKPOINT_FROM_BYTES = 4 * 1024 * 1024;
/** Quiet time before the WAL is truncated, by default. */
export const DEFAULT_WAL_QUIET_MS = 1000;
/** How long the worker's copy waits for reads once writes have stopped, at most, by default. */
export const DEFAULT_WAL_YIELD_MAX_MS = 2000;
/** How long after the last write the worker's copy waits for reads to come, by default (one round). */
export const DEFAULT_WAL_SETTLE_MS = 200;
export const DEFAULT_WAL_READS_QUIET_MS = 100;

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

/** The page cache of the server's connection, in KiB. */
const SQLITE_CACHE_KIB = 2048;

/** Opens (creating if needed) the SQLite database in WAL mode. */
export function openStore(file: string, options: StoreOptions = {}): SqliteStore {
  const walSizeLimit = options.walSizeLimit ?? DEFAULT_WAL_SIZE_LIMIT;
  const walBusyLimit = options.walBusyLimit ?? DEFAULT_WAL_BUSY_LIMIT;
  const busyRetry = options.busyRetry ?? DEFAULT_BUSY_RETRY;
  if (file !== ":memory:") {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // Create the file ourselves (0600) before SQLite does (0644 less the umask), then fix older files' modes.
    if (!existsSync(file)) closeSync(openSync(file, "a", 0o600));
    restrictModes(file);
  }
  const sqlite = openSqlite(file);
  // Larger pages mean fewer overflow pages per 64 KiB chunk; only takes effect on a new database.
  sqlite.pragma("page_size = 16384");
  sqlite.pragma("journal_mode = WAL");
  // NORMAL in WAL mode: a committed transaction survives a process crash; only an OS crash may lose the last ones.
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  // A 2 MB page cache (better-sqlite3 builds SQLite with 16 MB): appends write each page once and never read it
  // again, reads of recent output find it here or in the OS's cache of the WAL, so a bigger one only fills up while
  // ingesting (14 MB more peak memory for nothing the benches could see; bench/history/README.md).
  sqlite.pragma(`cache_size = -${SQLITE_CACHE_KIB}`);
  // A short blocking wait for a lock; past it the store retries asynchronously (busy.ts), so the event loop goes on.
  sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 1000}`);
  // The writer never truncates the WAL when it starts it over (on this thread, freeing a few hundred MB took
  // 80-200 ms on an ext4 mounted with discard): it reuses the file, and the worker cuts it once writes are quiet.
  sqlite.pragma("journal_size_limit = -1");
  // Checkpoints (copying the WAL into the database, then an fsync) run on a worker thread, so the
  // event loop never stalls on them; the connection's own automatic checkpoint is only a backstop
  // for a worker that cannot keep up (every 256 MiB of WAL at 16 KiB pages): it bounds the file the
  // worker may have to truncate once quiet. The worker starts once the WAL holds walCheckpointFromBytes: a store
  // that writes less (a short-lived or little-used server) never pays for a thread.
  // When the connection last wrote and read, for the worker: its copy waits for reads once writes have stopped.
  const activity = activityClock(sqlite);
  const checkpointer =
    file === ":memory:"
      ? null
      : checkpointerOnDemand(
          sqlite,
          file,
          activity,
          {
            walSizeLimit,
            walBusyLimit,
            quietMs: options.walQuietMs ?? DEFAULT_WAL_QUIET_MS,
            yieldMaxMs: options.walYieldMaxMs ?? DEFAULT_WAL_YIELD_MAX_MS,
            settleMs: options.walSettleMs ?? DEFAULT_WAL_SETTLE_MS,
            readsQuietMs: options.walReadsQuietMs ?? DEFAULT_WAL_READS_QUIET_MS,
          },
          // Before the WAL passes a bound the worker keeps it under.
          options.walCheckpointFromBytes ?? Math.min(DEFAULT_WAL_CHECKPOINT_FROM_BYTES, walSizeLimit, walBusyLimit),
          undefined,
          options.onCheckpointerError,
        );
  sqlite.pragma("wal_autocheckpoint = 16384");
  // The WAL and shared-memory files exist now (WAL mode opened them): 0600 like the database.
  if (file !== ":memory:") restrictModes(file);
  // Queries wait for the one connection first come, first served; a release wakes one waiter, not all of them.
  // Statements refused as busy outside a transaction (BEGIN itself included) are tried again.
  const db = new Kysely<Database>({
    dialect: new FifoSqliteDialect({ database: typedErrors(sqlite) }, { options: busyRetry, idle: () => !sqlite.inTransaction }),
  });
  let closed = false;
  const store: SqliteStore = {
    kind: "sqlite",
    db,
    sqlite,
    file,
    busyRetry,
    location: file,
    appendsHeld: checkpointer?.appendsHeld,
    appendChunk: (entryId, data, seq, open) => {
      Atomics.store(activity, WROTE, Date.now() | 0);
      return appendChunk(store, entryId, data, seq, open);
    },
    async close() {
      if (closed) return;
      closed = true;
      await checkpointer?.stop();
      // Kysely's destroy() closes the better-sqlite3 handle after pending queries finish.
      await db.destroy();
    },
  };
  if (checkpointer) trackCheckpointer(store, checkpointer);
  return store;
}

/** Prepared statements kept for reuse by the server's connection (by their SQL text). */
export const STATEMENT_CACHE_SIZE = 256;

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
  // Kysely prepares every statement it runs, and SQLite's prepare is a parse and plan each time: the statements
  // are kept by their text (most of Spool's are a few dozen shapes), the least recently used going past the bound.
  // A statement still being iterated is busy, so one of the same text then gets its own (not kept).
  const cache = new Map<string, SQLite.Statement>();
  const prepared = (sql: string): SQLite.Statement => {
    const kept = cache.get(sql);
    if (kept && !kept.busy) {
      cache.delete(sql);
      cache.set(sql, kept);
      return kept;
    }
    const statement = guard((text: string) => sqlite.prepare(text))(sql);
    if (kept) return statement;
    cache.set(sql, statement);
    if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    return statement;
  };
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare(sql) {
      // SQLite may already have rolled back a transaction a full disk broke; Kysely's ROLLBACK then has nothing to undo
      // and must not replace the StorageFull error with "no transaction is active".
      if (/^\s*rollback\s*$/i.test(sql) && !sqlite.inTransaction)
        return { reader: false, all: () => [], run: () => ({ changes: 0, lastInsertRowid: 0 }), iterate: () => [][Symbol.iterator]() };
      const statement = prepared(sql);
      // Kysely prepares each statement it runs: a read, or a write (BEGIN and COMMIT count as writes).
      noteActivity(sqlite, statement.reader ? READ : WROTE);
      return {
        reader: statement.reader,
        all: guard((parameters: readonly unknown[]) => statement.all(...parameters)),
        run: guard((parameters: readonly unknown[]) => statement.run(...parameters)),
        iterate: guard((parameters: readonly unknown[]) => statement.iterate(...parameters)),
      };
    },
  };
}
