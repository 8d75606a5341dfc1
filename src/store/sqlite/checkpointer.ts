import { statSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type SQLite from "better-sqlite3";
import { program } from "../../program.js";
import { WROTE } from "./activity.js";
import { type CheckpointWorkerData, type CheckpointWorkerMessage, HOLD, WRITES_STOPPED_MS } from "./checkpoint-hold.js";
import { SQLITE_PACKAGES, sqliteDriverPath } from "./sqlite-driver.js";
import type { SqliteStore } from "./sqlite-store.js";

/** What the checkpoint worker did so far (tests and bench/wal.ts read it). */
export interface CheckpointStats {
  /**
   * RESTART checkpoints that got the writer's lock and left the WAL to be started over. The worker runs every one,
   * with the server's group commit held at its request (never on the server's thread).
   */
  restarts: number;
  /**
   * Of those, the ones run after the catch-up rounds gave up (commits came faster than the rounds copied them)
   * with the WAL far past walBusyLimit.
   */
  forcedRestarts: number;
  /** The longest time the group commit was held for one RESTART (its appends waited that long, the event loop did not). */
  longestHeldMs: number;
  /** The time the group commit was held for RESTARTs, in all. */
  heldMs: number;
  /** The worker's requests to hold the group commit for a forced RESTART (its own, after converging rounds, are not counted). */
  restartRequests: number;
  /**
   * Of those, the ones refused because writes had stopped when the request was handled (none for
   * WRITES_STOPPED_MS): the WAL no longer grew, and the worker's own rounds copy the rest without the writer's lock.
   */
  restartsNotNeeded: number;
  /** Rounds the worker skipped because writes had stopped and the server was reading. */
  yielded: number;
  /**
   * Rounds that left their catch-up loop, before another PASSIVE round or the RESTART, because writes had stopped
   * and the server was reading meanwhile (a round begun while a burst went on): the next rounds copy the rest.
   */
  leftForReads: number;
}

const checkpointers = new WeakMap<SqliteStore, { stats: () => CheckpointStats; onHold: (listener: (ms: number) => void) => void }>();

/** The checkpoint worker's figures for a store opened by openStore (null for an in-memory database). */
export function checkpointStats(store: SqliteStore): CheckpointStats | null {
  return checkpointers.get(store)?.stats() ?? null;
}

/** Calls `listener` with the milliseconds of each hold of the appends the checkpoint worker asks for (the server's metrics). */
export function onCheckpointHold(store: SqliteStore, listener: (ms: number) => void): void {
  checkpointers.get(store)?.onHold(listener);
}

/** Makes a store's checkpoint worker the one checkpointStats and onCheckpointHold answer for. */
export function trackCheckpointer(store: SqliteStore, checkpointer: Checkpointer): void {
  checkpointers.set(store, checkpointer);
}

/** A running checkpoint worker, as openStore holds it. */
export type Checkpointer = ReturnType<typeof startCheckpointer>;

/** What the worker counts before it runs. */
const NO_CHECKPOINTS: CheckpointStats = {
  restarts: 0,
  forcedRestarts: 0,
  longestHeldMs: 0,
  heldMs: 0,
  restartRequests: 0,
  restartsNotNeeded: 0,
  yielded: 0,
  leftForReads: 0,
};

/**
 * The checkpoint worker, started once the WAL holds `startAfterBytes` (looked at every `intervalMs`; 0: at once). A
 * worker thread costs ~45 ms of CPU to start and a few MB to keep; a server that writes less than that (a short-lived
 * or little-used one) never needs it: SQLite copies the WAL into the database when the last connection closes, and
 * the connection's own automatic checkpoint stays the backstop. The same interface either way.
 */
export function checkpointerOnDemand(
  sqlite: SQLite.Database,
  file: string,
  activity: Int32Array,
  limits: Parameters<typeof startCheckpointer>[3],
  startAfterBytes: number,
  intervalMs = 200,
  onError?: (error: Error) => void,
): Checkpointer {
  let started: Checkpointer | null = null;
  let holdListener: ((ms: number) => void) | null = null;
  const start = () => {
    clearInterval(look);
    started = startCheckpointer(sqlite, file, activity, limits, intervalMs, onError);
    if (holdListener) started.onHold(holdListener);
  };
  const walBytes = () => {
    try {
      return statSync(`${file}-wal`).size;
    } catch {
      return 0;
    }
  };
  const look: NodeJS.Timeout = setInterval(() => {
    if (sqlite.open && walBytes() >= startAfterBytes) start();
  }, intervalMs);
  look.unref();
  if (startAfterBytes <= 0) start();
  return {
    appendsHeld: () => (started ? started.appendsHeld() : null),
    onHold: (listener) => {
      holdListener = listener;
      started?.onHold(listener);
    },
    stats: () => (started ? started.stats() : { ...NO_CHECKPOINTS }),
    stop: () => {
      clearInterval(look);
      return started ? started.stop() : Promise.resolve();
    },
  };
}

/** What bounds the worker's checkpoints (checkpoint-worker.ts). */
type CheckpointLimits = { walSizeLimit: number; walBusyLimit: number; quietMs: number; yieldMaxMs: number; settleMs: number; readsQuietMs: number };

/** Starts the checkpoint worker for a database file. */
export function startCheckpointer(
  sqlite: SQLite.Database,
  file: string,
  activity: Int32Array,
  limits: CheckpointLimits,
  intervalMs = 200,
  onError?: (error: Error) => void,
) {
  const pageSize = sqlite.pragma("page_size", { simple: true }) as number;
  const { worker, stats, hold } = spawnWorker(file, activity, { ...limits, pageSize }, intervalMs);
  let stopping: Promise<void> | null = null;
  const figures = { restarts: new Int32Array(stats), forcedRestarts: 0, longestHeldMs: 0, heldMs: 0, restartRequests: 0, restartsNotNeeded: 0 };
  let holdListener: ((ms: number) => void) | null = null;
  // The worker's request to hold the group commit while its RESTART has the writer's lock: granted between two
  // transactions (one open across awaits is waited for, a turn at a time), the commits that come meanwhile wait for
  // its "released" message. No checkpoint runs on this thread: its copy and fsyncs stay on the worker's.
  let held: Promise<void> | null = null;
  let release = () => {};
  const refuse = () => {
    Atomics.compareExchange(hold, 0, HOLD.ASKED, HOLD.FREE);
    Atomics.notify(hold, 0);
  };
  const holdHere = (forced: boolean, turns: number) => {
    if (stopping || !sqlite.open) return refuse();
    // Writes have stopped since the worker asked for a forced RESTART (a burst ended): the WAL no longer grows, and
    // the worker's rounds copy the rest without the writer's lock; the next writer starts a wholly copied WAL over.
    if (forced && (((Date.now() | 0) - Atomics.load(activity, WROTE)) | 0) >= WRITES_STOPPED_MS) {
      figures.restartsNotNeeded++;
      return refuse();
    }
    if (sqlite.inTransaction) {
      if (turns < 1000) setImmediate(holdHere, forced, turns + 1);
      else refuse();
      return;
    }
    // The worker may have withdrawn its request meanwhile (unanswered for a second).
    if (Atomics.compareExchange(hold, 0, HOLD.ASKED, HOLD.HELD) !== HOLD.ASKED) return;
    held = new Promise((resolve) => {
      release = resolve;
    });
    // Appends wait for the worker's "released": until then the worker keeps the process alive (a process with
    // nothing else to wait on, a script or a CLI command, would otherwise end with its appends unwritten).
    worker.ref();
    Atomics.notify(hold, 0);
  };
  worker.on("message", (message: CheckpointWorkerMessage) => {
    if (message === "hold" || message === "hold-forced") {
      if (message === "hold-forced") figures.restartRequests++;
      holdHere(message === "hold-forced", 0);
      return;
    }
    if (typeof message !== "object" || !("released" in message)) return;
    if (message.forced) figures.forcedRestarts++;
    figures.longestHeldMs = Math.max(figures.longestHeldMs, message.released);
    figures.heldMs += message.released;
    holdListener?.(message.released);
    held = null;
    // Unref'd again, unless stop() has begun: it keeps the worker ref'd until the worker has closed its connection. A
    // "released" that came after stop() (a close right after a RESTART) otherwise left nothing alive, and a script
    // awaiting its store's close() ended with exit 13 (an unsettled top-level await).
    if (!stopping) worker.unref();
    release();
  });
  // A worker gone while it held the group commit (it never is, short of a crash) does not keep the appends waiting.
  worker.once("exit", () => {
    held = null;
    release();
  });
  // An error the worker did not catch ends the worker, never the process (an 'error' nobody listens to would): the
  // store goes on, SQLite's own automatic checkpoint bounding the WAL from then on, and whoever opened it is told.
  worker.on("error", (error: unknown) => {
    held = null;
    release();
    onError?.(asError(error));
  });
  // A 'message' listener refs the worker's port again: the worker must not keep the process alive.
  worker.unref();
  return {
    appendsHeld: () => held,
    onHold: (listener: (ms: number) => void) => {
      holdListener = listener;
    },
    stats: (): CheckpointStats => ({
      restarts: Atomics.load(figures.restarts, 0),
      yielded: Atomics.load(figures.restarts, 1),
      leftForReads: Atomics.load(figures.restarts, 2),
      forcedRestarts: figures.forcedRestarts,
      longestHeldMs: figures.longestHeldMs,
      heldMs: figures.heldMs,
      restartRequests: figures.restartRequests,
      restartsNotNeeded: figures.restartsNotNeeded,
    }),
    stop: () => (stopping ??= stopWorker(worker)),
  };
}

/** The checkpoint worker of `file`, unref'd, and the shared slots it counts in (`stats`) and asks to hold the group commit by (`hold`). */
function spawnWorker(file: string, activity: Int32Array, limits: CheckpointLimits & { pageSize: number }, intervalMs: number) {
  const driver = sqliteDriverPath();
  // The worker's isolate holds a few MB at most: a small old generation keeps V8 from growing it (~1 MB less RSS).
  const resourceLimits = { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 };
  // Int32 slots the worker counts in: its RESTARTs, rounds yielded, catch-up loops left for reads.
  const stats = new SharedArrayBuffer(12);
  const hold = new Int32Array(new SharedArrayBuffer(4));
  const workerData: CheckpointWorkerData = {
    file,
    driver,
    intervalMs,
    ...limits,
    stats,
    activity: activity.buffer as SharedArrayBuffer,
    hold: hold.buffer as SharedArrayBuffer,
  };
  // The worker's program: checkpoint-worker.ts, better-sqlite3 left for it to require by its path.
  const code = program(import.meta.url, "checkpoint-worker", SQLITE_PACKAGES);
  const worker = new Worker(code.file ?? code.source, { eval: code.file === null, resourceLimits, workerData });
  worker.unref();
  return { worker, stats, hold };
}

/** Asks the worker to stop; settles once it has closed its connection and ended (or ended otherwise). */
function stopWorker(worker: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => resolve();
    worker.on("message", (message) => {
      if (message === "stopped") void worker.terminate().then(done, done);
    });
    worker.once("exit", done);
    worker.once("error", done);
    // Kept alive until the worker has closed its connection (the listener above does not ref it: one is there).
    worker.ref();
    worker.postMessage("stop");
  });
}

/** A worker's error as an Error with a message: a SQLite error may cross the thread as `{ code }` alone. */
function asError(error: unknown): Error {
  if (error instanceof Error && error.message) return error;
  const code = (error as { code?: unknown } | null)?.code;
  return new Error(typeof code === "string" ? code : String(error));
}
