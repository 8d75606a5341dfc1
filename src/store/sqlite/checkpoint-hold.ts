// What the checkpointer (the server's side, checkpointer.ts) and its worker thread (checkpoint-worker.ts) share.

/**
 * Milliseconds without a write on the server's connection after which writes count as stopped (the worker's copy
 * then waits for reads, and a forced RESTART it asked for is not run).
 */
export const WRITES_STOPPED_MS = 10;
/** The hold slot the worker and the server's thread share: free, asked for by the worker, held by the server's thread. */
export const HOLD = { FREE: 0, ASKED: 1, HELD: 2 } as const;

/** What the server's thread hands the worker (its `workerData`). */
export interface CheckpointWorkerData {
  /** The database file. */
  file: string;
  /** The resolved path of better-sqlite3, required by the worker wherever it was loaded from. */
  driver: string;
  /**
   * The database's page size, read by the server's connection: the worker reads nothing as it starts (its connection
   * has no busy timeout, and a read while the server's connection builds the WAL's index fails SQLITE_BUSY_RECOVERY).
   */
  pageSize: number;
  intervalMs: number;
  walSizeLimit: number;
  walBusyLimit: number;
  quietMs: number;
  yieldMaxMs: number;
  settleMs: number;
  /** A read within this many milliseconds is a server that reads still (the worker's copy waits for it). */
  readsQuietMs: number;
  /** Int32 slots the worker counts in: its RESTARTs, rounds yielded, catch-up loops left for reads. */
  stats: SharedArrayBuffer;
  /** When the server's connection last wrote and read (activity.ts). */
  activity: SharedArrayBuffer;
  /** The hold slot (HOLD). */
  hold: SharedArrayBuffer;
}

/** The worker's messages to the server's thread. */
export type CheckpointWorkerMessage = "hold" | "hold-forced" | "stopped" | { released: number; forced: boolean };
