// The checkpoint worker: a program of its own, run in a worker thread that src/store/sqlite/checkpointer.ts starts (from
// dist/ as this compiled file, from the sources bundled by esbuild). It never runs on the server's thread.

import { closeSync, fdatasyncSync, openSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { workerData as data, parentPort as port } from "node:worker_threads";
import type SQLite from "better-sqlite3";
import { READ, WROTE } from "./activity.js";
import { type CheckpointWorkerData, type CheckpointWorkerMessage, HOLD, WRITES_STOPPED_MS } from "./checkpoint-hold.js";

/*
 * What the checkpoint worker runs: a PASSIVE checkpoint every `intervalMs`, which copies the WAL into the
 * database without ever taking the writer's lock; while writes go on, sooner: once the WAL has grown by about a
 * quarter of `walBusyLimit` at the rate since the last round (every 10 ms at the soonest).
 *
 * While commits come, such a checkpoint never leaves the WAL wholly copied when the writer begins its next
 * transaction, and only then does SQLite write from the WAL's start again; so once the WAL in use is over
 * `walBusyLimit` and a checkpoint caught up with it, the worker writes the database file back (fdatasync) and
 * copies what came meanwhile, a few passes at most, then runs a RESTART checkpoint: it takes the writer's lock,
 * copies and syncs what is left, and returns once no reader uses the WAL, so the writer's next commit starts it
 * over. The server's group commit is held meanwhile at the worker's request (`restartHeld`): its appends wait that
 * long (bench/history/README.md) and go on at the worker's message, the event loop is never blocked by a checkpoint, and
 * the writer never sleeps in SQLite's busy handler for it.
 *
 * A TRUNCATE checkpoint also takes that lock, and truncating a large file takes long (tens of milliseconds for
 * 64 MiB, hundreds for a GB on an ext4 mounted with discard), so it runs only once no commit has come for
 * `quietMs` (`PRAGMA data_version` unchanged), the whole WAL is in the database and the file is over
 * `walSizeLimit`, and it gives up at once if a writer is there: the disk space comes back after a burst
 * even when no write follows, and a running writer is not held off by it.
 *
 * Once writes have stopped (none for WRITES_STOPPED_MS) while the server reads (a read since the last write and
 * within `readsQuietMs` (100 ms); a stream call reads before it appends, so a commit slow under load is not taken for that),
 * nothing is urgent: the WAL does not grow. The round is skipped then, and also in the first `settleMs` after the
 * last write with no read yet (the reads after a burst come a few ms after its end: a round that fell between the
 * two began a copy of tens of MB just before them, bench/history/README.md), so what is left to copy after a burst
 * (tens of MB, ~100 ms of a core) does not compete for the CPU with the first reads; it is copied once the reads
 * are quiet too, or after `yieldMaxMs` of skipping, and never skipped while the WAL in use is over 4 × walBusyLimit.
 * A round begun while writes went on looks again before each write-back pass and before its RESTART: once
 * writes have stopped and the server reads, it leaves there (the WAL no longer grows, and a writer starts a copied
 * WAL over by itself), so its write-back passes do not hold a core while the first reads after a burst come (on two
 * cores the read's thread waited behind them for the CPU: bench/history/README.md). What is left is copied by the next
 * rounds as above.
 * The server's thread publishes its last write and read in `activity` (activity.ts).
 */
if (!port) throw new Error("checkpoint-worker.ts runs in a worker thread (src/store/sqlite/checkpointer.ts starts it)");
const parentPort = port;
const workerData = data as CheckpointWorkerData;
const post = (message: CheckpointWorkerMessage) => parentPort.postMessage(message);
// Required by its resolved path: the worker's own module may be a bundle evaluated from the sources.
const Driver = createRequire(workerData.driver)(workerData.driver) as typeof SQLite;
const db = new Driver(workerData.file);
db.pragma("busy_timeout = 0");
// Checkpoints copy WAL frames without the page cache: keep it small.
db.pragma("cache_size = -256");
const walSize = () => {
  try {
    return statSync(`${workerData.file}-wal`).size;
  } catch {
    return 0;
  }
};
interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}
const checkpoint = (mode: "PASSIVE" | "RESTART" | "TRUNCATE") => (db.pragma(`wal_checkpoint(${mode})`) as CheckpointResult[])[0];
const caughtUp = (result: CheckpointResult | undefined): result is CheckpointResult => !!result && result.busy === 0 && result.log === result.checkpointed;
// Bytes of WAL in use: its header and `log` frames of a page each (the file stays larger once started over).
const frameBytes = workerData.pageSize + 24;
const inUse = (result: { log: number }) => 32 + result.log * frameBytes;
// A RESTART follows a write-back pass whose PASSIVE found at most this many new frames (4 MiB at 16 KiB pages): the
// RESTART copies and syncs about that much with the appends held (3-6 ms here, bench/history/README.md).
const RESTART_AFTER_FRAMES = 256;
// Past this many times walBusyLimit in use, a RESTART that failed (a reader in the WAL) is asked for again, forced.
const FORCE_AFTER = 2;
// RESTARTs that succeeded here, rounds skipped for readers, catch-up loops left for them (tests and bench/wal.ts).
const stats = new Int32Array(workerData.stats);
// When the server's connection last wrote and read: Date.now()'s low 32 bits (activity.ts).
const activity = new Int32Array(workerData.activity);
const age = (slot: number) => ((Date.now() | 0) - Atomics.load(activity, slot)) | 0;
// Not while more than this many times walBusyLimit was in use at the last round (SQLite's backstop size at the
// default): a 1 GB burst at 150-200 MB/s ends with 15-150 MiB in use, and what is in use does not grow meanwhile.
const YIELD_UNDER = 4;
let yieldingSince = 0;
let lastInUse = 0;
// A RESTART here takes the writer's lock: the server's group commit is held meanwhile, at this worker's request, so
// it waits for a wake-up ("released") instead of sleeping in SQLite's busy handler, and no checkpoint ever runs on
// the server's thread. Asked (ASKED and a message), the server's thread answers between two of its transactions:
// HELD, or FREE when the store is closing or, for a forced one, when writes have stopped (it is not needed then).
const hold = new Int32Array(workerData.hold);
const { FREE, ASKED, HELD } = HOLD;
// SQLite syncs the database file only after a round that copied the whole WAL, which a flood never lets a round do:
// the pages the rounds since the last RESTART copied (up to the whole WAL in use) would be written back by the
// RESTART's sync, with the appends held (40-300 ms, bench/history/README.md). Written back here first, and what came
// meanwhile copied (a few times at most: each pass leaves less to sync when the disk writes faster than appends
// come), the RESTART under the hold syncs only the last pass's pages. Not past WRITE_BACK_UNDER × walBusyLimit in
// use (128 MiB at the default): the WAL grows meanwhile (a pass under load took 100-300 ms), and SQLite's backstop
// (a checkpoint on the server's thread, at 256 MiB) must stay out of reach.
const database = openSync(workerData.file, "r");
const WRITE_BACK_UNDER = 2;
// "caught-up" once a pass's PASSIVE found little new; "reads" once writes have stopped and the server reads (the WAL
// no longer grows, and the copy would meet the reads); "behind" when the passes did not catch up (a flood outran
// them, a pass was busy, or the WAL went past WRITE_BACK_UNDER × walBusyLimit).
const writeBack = (checkpointed: number, log: number): "caught-up" | "reads" | "behind" => {
  for (let pass = 0; pass < 3; pass++) {
    if (readsGoOn()) return "reads";
    if (inUse({ log }) > WRITE_BACK_UNDER * workerData.walBusyLimit) return "behind";
    fdatasyncSync(database);
    const result = checkpoint("PASSIVE");
    if (result?.busy !== 0) return "behind";
    const copied = result.checkpointed - checkpointed;
    checkpointed = result.checkpointed;
    log = result.log;
    if (copied >= 0 && copied <= RESTART_AFTER_FRAMES) return "caught-up";
  }
  return "behind";
};
// The WAL's own file, for its write-back before a hold (opened once it exists: SQLite makes it at the first write).
let wal = -1;
const syncWal = () => {
  if (wal < 0) {
    try {
      wal = openSync(`${workerData.file}-wal`, "r");
    } catch {
      return;
    }
  }
  fdatasyncSync(wal);
};
// Starts the WAL over with the group commit held. A forced one (asked though the copy did not catch up) is refused by
// the server's thread once writes have stopped: the WAL no longer grows, the next rounds copy the rest without the
// writer's lock, and the next writer starts it over.
// The RESTART syncs the WAL's frames it has not synced yet, copies what the last PASSIVE left and syncs the database
// file, all with the appends held: both files are written back here first, so under the hold it syncs only what
// came while the request was answered and what it copies itself (a GB at 400 MB/s held the appends 180-250 ms in
// all, 80-130 since; bench/history/README.md).
const restartHeld = (forced: boolean): boolean => {
  fdatasyncSync(database);
  syncWal();
  Atomics.store(hold, 0, ASKED);
  post(forced ? "hold-forced" : "hold");
  const deadline = Date.now() + 1000;
  for (let left = 1000; Atomics.load(hold, 0) === ASKED && left > 0; left = deadline - Date.now()) Atomics.wait(hold, 0, ASKED, left);
  // Not answered within a second (a transaction open across awaits all that time): withdrawn, unless held just now.
  if (Atomics.compareExchange(hold, 0, ASKED, FREE) !== HELD) return false;
  const start = Date.now();
  let done = false;
  try {
    const result = checkpoint("RESTART");
    done = !!result && result.busy === 0;
    if (done) {
      Atomics.add(stats, 0, 1);
      // The writer's next commit starts the WAL over: the next round's pace counts from here.
      paceLog = 0;
      paceAt = Date.now();
    }
    return done;
  } finally {
    Atomics.store(hold, 0, FREE);
    post({ released: Date.now() - start, forced: done && forced });
  }
};
let version = -1;
let quietSince = Date.now();
// Writes have stopped and the server reads (a read since the last write, and a recent one).
const readsGoOn = () => {
  const sinceWrite = age(WROTE);
  const sinceRead = age(READ);
  return sinceWrite >= WRITES_STOPPED_MS && sinceRead < workerData.readsQuietMs && sinceRead < sinceWrite;
};
// Leaves a round's catch-up loop for the reads (counted for tests and bench/wal.ts).
const leaveForReads = () => {
  Atomics.add(stats, 2, 1);
};
// While writes go on, the next round comes once the WAL has grown by about 1/PACE_STEP of walBusyLimit at the rate
// since the last round: between PACE_MIN_MS and intervalMs. With rounds only every intervalMs, a flood at 250 MB/s
// grew the WAL by ~50 MB between two rounds: it was started over only past 2 × walBusyLimit (140-185 MiB at the
// default), with most of that left for the RESTART to copy and sync while the appends were held (60-100 ms). At a
// sixteenth (4 MiB at the default) a round's PASSIVE copies a few milliseconds' worth: the copy before a RESTART
// leaves less behind, and a round that began just before a burst ended meets the first reads after it for less
// long (10-20 ms against up to 55 at a quarter: bench/history/README.md).
const PACE_MIN_MS = 10;
const PACE_STEP = 16;
let paceLog = 0;
let paceAt = Date.now();
const paced = (log: number, now: number): number => {
  // Frames written since the last round: at least what is in use now if the WAL was started over meanwhile.
  const grown = log >= paceLog ? log - paceLog : log;
  const elapsed = Math.max(1, now - paceAt);
  paceLog = log;
  paceAt = now;
  if (grown === 0) return workerData.intervalMs;
  const step = workerData.walBusyLimit / PACE_STEP / frameBytes;
  return Math.min(workerData.intervalMs, Math.max(PACE_MIN_MS, Math.round((step * elapsed) / grown)));
};
let next = workerData.intervalMs;
const round = (): void => {
  next = workerData.intervalMs;
  // Writes have stopped just now (within settleMs), no read yet: the reads that follow a burst are about to come.
  const sinceWrite = age(WROTE);
  const settling = sinceWrite >= WRITES_STOPPED_MS && sinceWrite < workerData.settleMs;
  if ((readsGoOn() || settling) && lastInUse <= YIELD_UNDER * workerData.walBusyLimit) {
    // Writes have stopped and the server reads (or may read at once): the copy waits for the reads, up to yieldMaxMs.
    const start = Date.now();
    if (yieldingSince === 0) yieldingSince = start;
    if (start - yieldingSince < workerData.yieldMaxMs) {
      Atomics.add(stats, 1, 1);
      return;
    }
  } else {
    yieldingSince = 0;
  }
  try {
    const result = checkpoint("PASSIVE");
    if (result) lastInUse = inUse(result);
    const now = Date.now();
    const current = db.pragma("data_version", { simple: true }) as number;
    // Every round notes the WAL's size for the pace (after a quiet spell, the rate counts from the last round).
    const pace = result && result.log >= 0 ? paced(result.log, now) : workerData.intervalMs;
    if (current !== version) {
      next = pace;
      version = current;
      quietSince = now;
      if (caughtUp(result) && inUse(result) > workerData.walBusyLimit) {
        // Writes go on and the WAL is large: it is started over (the writer's next transaction writes from its
        // start instead of growing it), the database file written back first, so the RESTART under the writer's
        // lock copies and syncs little. Writes that stop meanwhile make it needless: once the server reads, the
        // worker leaves (whatever the WAL's size: it no longer grows), before each write-back pass and the RESTART.
        if (readsGoOn()) {
          leaveForReads();
          return;
        }
        const state = age(WROTE) < WRITES_STOPPED_MS ? writeBack(result.checkpointed, result.log) : "caught-up";
        if (state === "reads") {
          leaveForReads();
          return;
        }
        if (restartHeld(state === "behind")) return;
        if (state !== "behind" && inUse(result) > FORCE_AFTER * workerData.walBusyLimit) restartHeld(true);
      }
      return;
    }
    if (now - quietSince < workerData.quietMs) return;
    if (caughtUp(result) && walSize() > workerData.walSizeLimit) {
      checkpoint("TRUNCATE");
    }
  } catch {
    // busy, locked or full: the next round catches up
  }
};
// A round runs whole between two messages: the stop message finds the next round's timer set, and clears it.
const tick = () => {
  try {
    round();
  } finally {
    timer = setTimeout(tick, next);
  }
};
let timer: NodeJS.Timeout = setTimeout(tick, workerData.intervalMs);
parentPort.on("message", () => {
  clearTimeout(timer);
  // Whatever closing says, the worker is done with the files: "stopped" is what the server's close() waits for.
  for (const close of [() => closeSync(database), () => wal >= 0 && closeSync(wal), () => db.close()]) {
    try {
      close();
    } catch {
      // closed, or busy: SQLite's last connection copies the WAL in either way
    }
  }
  post("stopped");
});
