import { spawn } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { checkpointStats, openStore } from "../../src/store/sqlite/database.js";
import { sqliteDriverPath } from "../../src/store/sqlite/sqlite-driver.js";
import { entryReads } from "../../src/store/sync-lookups.js";
import { eventually, tempDir } from "../helpers/server.js";
import { walFrames } from "../helpers/wal-frames.js";

// The checkpoint worker (src/store/sqlite/checkpoint-worker.ts) as writes stop, during its round and in a process: split from files.test.ts.

/**
 * A burst of Kysely commits (the store notes each write), then the server's synchronous reads one a turn: returns
 * once the worker skipped a round for them with frames left to copy (a few bursts if its round copied them all
 * first: one may come within 10 ms of the last write), or null if it never did. With them, when its last read came:
 * a stall of this process after it (a loaded machine) may have let a round copy meanwhile, rightly.
 */
async function burstThenRead(store: ReturnType<typeof openStore>, read: () => Promise<unknown>) {
  const row = Buffer.alloc(64 * 1024, 120);
  for (let attempt = 0; attempt < 8; attempt++) {
    for (let i = 0; i < 256; i++) await sql`INSERT INTO burst (data) VALUES (${row})`.execute(store.db);
    const yielded = checkpointStats(store)!.yielded ?? 0;
    const left = () => walFrames(store).copied < walFrames(store).frames;
    let lastRead = Date.now();
    while ((checkpointStats(store)!.yielded ?? 0) === yielded && left()) {
      await read();
      lastRead = Date.now();
      await new Promise((resolve) => setImmediate(resolve));
    }
    if ((checkpointStats(store)!.yielded ?? 0) > yielded && left()) return { ...walFrames(store), bursts: attempt + 1, lastRead };
  }
  return null;
}

describe("the checkpoint worker once writes stop", () => {
  it("does not copy the WAL while the server reads; copies it and cuts it back once the reads stop", async () => {
    const limit = 256 * 1024;
    const store = openStore(join(tempDir(), "spool.db"), { walSizeLimit: limit, walQuietMs: 100, walYieldMaxMs: 600_000, walCheckpointFromBytes: 0 });
    const wal = `${store.file}-wal`;
    try {
      await migrateToLatest(store, MIGRATIONS_DIR);
      await sql`CREATE TABLE burst (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`.execute(store.db);
      const reads = entryReads(store);
      const read = () => reads.findEntryById(1);
      // Before, the worker's next round copied the rest of the burst whatever the server did (it never skipped one).
      let bursts = 0;
      let start: { frames: number; copied: number } | null = null;
      for (let attempt = 0; attempt < 5 && !start; attempt++) {
        const skipped = await burstThenRead(store, read);
        expect(skipped, "a round skipped for the reads with frames left to copy").not.toBeNull();
        const { bursts: more, lastRead, ...frames } = skipped!;
        bursts += more;
        const yielded = checkpointStats(store)!.yielded;
        // The longest time between two reads: a loaded machine can stall this process past the worker's 100 ms
        // (READS_QUIET_MS), and then the reads did stop for it and it copies, rightly: such a try starts over. Counted
        // from burstThenRead's last read: a stall after it, before this loop's first read, is a gap too (a round
        // that came during it began its copy; it may end only after the frames above were read).
        let gap = 0;
        let last = lastRead;
        while (checkpointStats(store)!.yielded < yielded + 3) {
          await read();
          await new Promise((resolve) => setImmediate(resolve));
          gap = Math.max(gap, Date.now() - last);
          last = Date.now();
        }
        // Three more rounds came while the reads went on: none copied a frame, unless the reads stopped for 100 ms.
        const now = walFrames(store);
        if (now.frames === frames.frames && now.copied === frames.copied) start = frames;
        else expect(gap, "the reads' longest gap, a round having copied frames while they went on").toBeGreaterThanOrEqual(90);
      }
      expect(start, "three rounds that copied nothing while reads went on").not.toBeNull();
      expect(statSync(wal).size).toBeGreaterThan(limit);
      // Reads stop: the worker copies the rest and, writes being quiet, truncates the WAL.
      await eventually(() => statSync(wal).size <= limit, 20_000, "the WAL to be copied and cut back");
      expect((await sql<{ n: number }>`SELECT count(*) AS n FROM burst`.execute(store.db)).rows[0]!.n).toBe(256 * bursts);
    } finally {
      await store.close();
    }
  }, 120_000);

  it("waits walSettleMs after the last write even with no read yet, then copies it (here after walYieldMaxMs)", async () => {
    // The reads that follow a burst come a few ms after its end: a round in between does not begin the copy.
    const store = openStore(join(tempDir(), "spool.db"), { walSettleMs: 600_000, walYieldMaxMs: 1000, walQuietMs: 600_000, walCheckpointFromBytes: 0 });
    try {
      await sql`CREATE TABLE burst (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`.execute(store.db);
      const row = Buffer.alloc(64 * 1024, 122);
      const left = () => walFrames(store).copied < walFrames(store).frames;
      // A burst of the store's writes, then no statement at all (the WAL's state is read from the -shm file): a
      // round skips with frames left to copy. A round within 10 ms of the last write still counts it as going on
      // and may copy the lot first: then another burst. Before, the first round after a burst copied it.
      let skipped = false;
      let bursts = 0;
      while (!skipped && bursts < 8) {
        bursts++;
        for (let i = 0; i < 64; i++) await sql`INSERT INTO burst (data) VALUES (${row})`.execute(store.db);
        const yielded = checkpointStats(store)!.yielded;
        await eventually(() => checkpointStats(store)!.yielded > yielded || !left(), 20_000, "a round after the burst");
        skipped = checkpointStats(store)!.yielded > yielded && left();
      }
      expect(skipped, "a round skipped with frames left and no read").toBe(true);
      // No read comes: after walYieldMaxMs of skipping the worker copies the rest.
      await eventually(() => !left(), 20_000, "the WAL copied after walYieldMaxMs");
      expect((await sql<{ n: number }>`SELECT count(*) AS n FROM burst`.execute(store.db)).rows[0]!.n).toBe(64 * bursts);
    } finally {
      await store.close();
    }
  }, 120_000);

  it("copies it all the same after walYieldMaxMs when the reads never stop", async () => {
    const store = openStore(join(tempDir(), "spool.db"), { walSizeLimit: 256 * 1024, walQuietMs: 100, walYieldMaxMs: 500, walCheckpointFromBytes: 0 });
    try {
      await migrateToLatest(store, MIGRATIONS_DIR);
      await sql`CREATE TABLE burst (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`.execute(store.db);
      const reads = entryReads(store);
      const read = () => reads.findEntryById(1);
      expect(await burstThenRead(store, read), "a round skipped for the reads with frames left to copy").not.toBeNull();
      // The reads go on, one a turn, until the worker has copied every frame: it stops waiting for them.
      while (walFrames(store).copied < walFrames(store).frames) {
        await read();
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(walFrames(store).copied).toBe(walFrames(store).frames);
    } finally {
      await store.close();
    }
  }, 120_000);
});

describe("the checkpoint worker when writes stop during its round", () => {
  it("leaves the round's catch-up loop, before another PASSIVE or the RESTART, once writes have stopped and the server reads", async () => {
    // A RESTART loop at 1 MiB; no quiet-time truncation within the test. A round that finds the second burst's WAL
    // not yet committed (started over, nothing in use) skips the next ones for the reads, for walYieldMaxMs; then it
    // copies the burst and meets the reads as below.
    const store = openStore(join(tempDir(), "spool.db"), {
      walBusyLimit: 1024 * 1024,
      walQuietMs: 600_000,
      walYieldMaxMs: 2_000,
      walCheckpointFromBytes: 0,
      walReadsQuietMs: 1_000,
    });
    try {
      await sql`CREATE TABLE burst (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`.execute(store.db);
      const row = Buffer.alloc(64 * 1024, 121);
      // A first burst, one transaction of the store's (noted writes): ~10 MiB of WAL in use, over 4 × walBusyLimit, so
      // the worker's rounds do not skip for reads while that much is in use (what they found last).
      await store.db.transaction().execute(async (trx) => {
        for (let i = 0; i < 128; i++) await sql`INSERT INTO burst (data) VALUES (${row})`.execute(trx);
      });
      // No reads yet: the worker copies it, runs its RESTART loop and starts the WAL over.
      await eventually(() => checkpointStats(store)!.restarts >= 1, 20_000, "the worker's RESTART after the first burst");
      const stats = () => checkpointStats(store)!;
      const read = () => sql`SELECT id FROM burst WHERE id = 1`.execute(store.db);
      await read();
      // A second burst, ~3 MiB, by another connection on a thread of its own (the store notes only its own writes):
      // the server's last write is long past (writes have stopped) and it reads, one read a turn, from before the
      // burst on, so no round finds the reads stopped meanwhile (with the burst made on this thread, a round could find
      // no read in the last 100 ms and run the RESTART: CI saw it once). The worker's round copies the burst and, the
      // WAL in use over walBusyLimit, enters its catch-up loop: there it finds the reads and leaves. Before, it ran
      // another PASSIVE round and the RESTART (or, its RESTART finding a read under way, asked the store for one).
      const before = { ...stats(), leftForReads: stats().leftForReads ?? 0 };
      const acted = () => stats().restarts + stats().restartRequests + (stats().leftForReads ?? 0);
      const start = acted();
      let burst = "";
      const other = new Worker(
        `const { parentPort, workerData } = require("node:worker_threads");
        const db = new (require(workerData.driver))(workerData.file);
        db.pragma("busy_timeout = 10000");
        const row = Buffer.alloc(64 * 1024, 121);
        db.transaction(() => {
          const insert = db.prepare("INSERT INTO burst (data) VALUES (?)");
          for (let i = 0; i < 40; i++) insert.run(row);
        })();
        db.close();
        parentPort.postMessage("committed");`,
        { eval: true, workerData: { file: store.file, driver: sqliteDriverPath() } },
      );
      other.once("message", (message: string) => (burst = message));
      other.once("error", (error) => (burst = String(error)));
      while (burst === "" || acted() === start) {
        await read();
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(burst, "the second burst").toBe("committed");
      expect(stats().restarts, "RESTARTs").toBe(before.restarts);
      expect(stats().restartRequests, "RESTARTs asked of the store").toBe(before.restartRequests);
      expect(stats().leftForReads ?? 0, "catch-up loops left for the reads").toBe(before.leftForReads + 1);
      // The burst is copied all the same, without a RESTART, while the server reads on: by the round's first PASSIVE,
      // or, when that round ran before the other thread's transaction committed (a busy machine), by the next one.
      while (walFrames(store).copied !== walFrames(store).frames) {
        await read();
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(stats().restarts, "RESTARTs").toBe(before.restarts);
      // The store writes on.
      await sql`INSERT INTO burst (data) VALUES (${row})`.execute(store.db);
      expect((await sql<{ n: number }>`SELECT count(*) AS n FROM burst`.execute(store.db)).rows[0]!.n).toBe(128 + 40 + 1);
    } finally {
      await store.close();
    }
  }, 120_000);
});

/**
 * A script's opening: the store in `dir` (its checkpoint worker started at once, a small WAL limit), migrated, with
 * one streaming entry (id 1) to append to, `data` a 64 KiB chunk, and `names` imported from database.ts beside openStore.
 */
function storeWithEntry(dir: string, names: string[]): string {
  const src = (path: string) => JSON.stringify(new URL(`../../src/${path}`, import.meta.url).pathname);
  return `const { openStore, ${names.join(", ")} } = await import(${src("store/sqlite/database.ts")});
      const { migrateToLatest, MIGRATIONS_DIR } = await import(${src("store/migrator.ts")});
      const store = openStore(${JSON.stringify(join(dir, "spool.db"))}, { walSizeLimit: 256 * 1024, walBusyLimit: 1024 * 1024, walCheckpointFromBytes: 0 });
      await migrateToLatest(store, MIGRATIONS_DIR);
      store.sqlite.exec("INSERT INTO projects (id, name, root, created_at) VALUES (1, 'p', '/', 0); INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'r', 102, 0, 0); INSERT INTO entries (id, run_id, path, scheme, turn, status, streamed, created_at, updated_at) VALUES (1, 1, 'sh://turn_1/c', 'sh', 1, 102, 1, 0, 0)");
      const data = Buffer.alloc(64 * 1024, 120);`;
}

describe("the checkpoint worker and the process", () => {
  it("keeps a process alive while its appends wait for the worker's RESTART: a script that only appends ends with all of them stored", async () => {
    const dir = tempDir();
    const script = join(dir, "flood.mjs");
    // Appends through the store's group commit and nothing else alive (no socket, no timer): while the worker holds
    // the appends for a RESTART, only the worker can keep the process running. Before, it was unref'd then and the
    // process ended with the append pending (exit 13, an unsettled top-level await), the rest never written.
    writeFileSync(
      script,
      `${storeWithEntry(dir, ["checkpointStats"])}
      let seq = 0;
      // Until the worker held the appends a few times (each RESTART it runs is held), at most 256 MiB. A timer turn
      // between appends lets the worker's rounds catch up (its own RESTART, held); during an append nothing is alive.
      while (checkpointStats(store).restarts < 3 && seq < 4096) {
        await store.appendChunk(1, data, ++seq, 102);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      console.log("appended " + seq + " restarts " + checkpointStats(store).restarts);
      console.log("stored " + store.sqlite.prepare("SELECT count(*) AS n FROM chunks WHERE entry_id = 1").get().n);
      await store.close();`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    // What the script printed says where it stopped (exit 13: an await left pending with nothing alive).
    expect(code, out).toBe(0);
    const appended = /appended (\d+) restarts (\d+)/.exec(out);
    expect(appended, out).not.toBeNull();
    expect(Number(appended![2])).toBeGreaterThanOrEqual(3);
    expect(out).toContain(`stored ${appended![1]}`);
  }, 120_000);

  it('keeps a process alive through close() when the worker\'s "released" comes after close() began (ciL, Node 22: exit 13)', async () => {
    const dir = tempDir();
    const script = join(dir, "close-while-held.mjs");
    // close() while the worker holds the appends for its RESTART: the worker's "released" then comes after stop() has
    // ref'd it to wait for its "stopped". The handler of "released" unref'd it again, and the process stayed alive only
    // if "stopped" came before its event loop next looked (a worker busy with its next round after the RESTART: exit
    // 13 before close() settled). Which handles keep the process alive is read right after that handler has run, in a
    // microtask queued by the hold's listener (called in the same handler): the worker's port must be among them.
    writeFileSync(
      script,
      `${storeWithEntry(dir, ["onCheckpointHold"])}
      let seq = 0, pending = false, closing = false, alive = null;
      onCheckpointHold(store, () => { if (closing) queueMicrotask(() => { alive ??= process.getActiveResourcesInfo(); }); });
      // One append at a time, a turn between them, until the worker holds one for its RESTART (at most 512 MiB).
      while (!store.appendsHeld() && seq < 8192) {
        if (!pending) { pending = true; void store.appendChunk(1, data, ++seq, 102).then(() => { pending = false; }); }
        await new Promise((resolve) => setImmediate(resolve));
      }
      closing = true;
      const held = Boolean(store.appendsHeld());
      await store.close();
      console.log(JSON.stringify({ held, alive }));`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, out).toBe(0);
    const { held, alive } = JSON.parse(out) as { held: boolean; alive: string[] | null };
    expect(held).toBe(true);
    // Node names a worker's port this way on 20, 22 and 24; without the fix the list holds the stdio pipes alone.
    expect(alive, out).toContain("MessagePort");
  }, 120_000);

  it("a worker that ends on an error ends neither the process nor the store: whoever opened it is told (ciV: SQLITE_BUSY_RECOVERY at its start)", async () => {
    const dir = tempDir();
    const script = join(dir, "worker-fails.mjs");
    // The worker is given a database file it cannot open (a directory that does not exist): its first statement throws,
    // as a read at its start did once while the server's connection built the WAL's index. An 'error' event nobody
    // listened to ended the process (exit 1, no line printed); now the opener's callback gets it and the store goes on.
    const src = (path: string) => JSON.stringify(new URL(`../../src/${path}`, import.meta.url).pathname);
    writeFileSync(
      script,
      `${storeWithEntry(dir, [])}
      const { startCheckpointer } = await import(${src("store/sqlite/checkpointer.ts")});
      const limits = { walSizeLimit: 1 << 20, walBusyLimit: 1 << 20, quietMs: 100, yieldMaxMs: 100, settleMs: 10, readsQuietMs: 100 };
      const failed = await new Promise((resolve) => {
        const worker = startCheckpointer(store.sqlite, ${JSON.stringify(join(dir, "no-such-dir", "spool.db"))}, new Int32Array(new SharedArrayBuffer(8)), limits, 50, resolve);
        worker.stop().catch(() => {});
      });
      await store.appendChunk(1, data, 1, 102);
      console.log(JSON.stringify({ failed: failed.message || failed.code, stored: store.sqlite.prepare("SELECT count(*) AS n FROM chunks").get().n }));
      await store.close();`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, `${out}${err}`).toBe(0);
    const { failed, stored } = JSON.parse(out) as { failed: string; stored: number };
    expect(failed).toMatch(/Cannot open database because the directory does not exist/);
    expect(stored).toBe(1);
  }, 120_000);

  it("does not keep a process alive that opened a store and never closed it (its listener for the worker's requests is unref'd too)", async () => {
    const dir = tempDir();
    const script = join(dir, "open.mjs");
    writeFileSync(
      script,
      `const { openStore } = await import(${JSON.stringify(new URL("../../src/store/sqlite/database.ts", import.meta.url).pathname)});
      openStore(${JSON.stringify(join(dir, "spool.db"))}).sqlite.exec("CREATE TABLE t (x)"); console.log("opened");`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      // A process still alive after 30 s is the failure (it would never exit); it normally exits within a second or two.
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      child.once("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(out).toContain("opened");
    expect(code).toBe(0);
  }, 60_000);
});
