// The search worker: a program of its own, run in a worker thread that src/store/search/search.ts starts (from dist/ as this
// compiled file, from the sources bundled by esbuild). It never runs on the server's thread: a search of a GB, or a
// regular expression that backtracks for ever, costs the appends nothing, and the server ends it at its budget.

import { createRequire } from "node:module";
import { parentPort as port } from "node:worker_threads";
import type SQLite from "better-sqlite3";
import { LineMatcher, type MatchProgress } from "./search-match.js";
import { type ChunkPage, type ChunkPageRequest, DATA_PAGE, LINES_PAGE, type SearchJob, type WorkerReply, type WorkerRequest } from "./search-protocol.js";

if (!port) throw new Error("search-worker.ts runs in a worker thread (src/store/search/search.ts starts it)");
const parentPort = port;
const post = (message: WorkerReply) => parentPort.postMessage(message);

/** The database file this worker reads, opened once (read-only: a reader of the WAL beside the server's writer). */
let local: { file: string; db: SQLite.Database } | null = null;

function open(file: string, driver: string): SQLite.Database {
  if (local?.file === file) return local.db;
  local?.db.close();
  const Driver = createRequire(driver)(driver) as typeof SQLite;
  const db = new Driver(file, { readonly: true, fileMustExist: true });
  db.pragma("busy_timeout = 1000");
  db.pragma("cache_size = -2048");
  // Pages read through a mapping of the file, not a read(2) each (the WAL's pages still come by read).
  db.pragma("mmap_size = 4294967296");
  local = { file, db };
  return db;
}

/**
 * One page of the searched chunks through this worker's own connection: each page one statement read whole (a short
 * read transaction: a checkpoint never waits long for this reader). One channel in seq order; several merged by
 * row id (the order they were stored in).
 */
function localPage(db: SQLite.Database, entryIds: readonly number[], request: ChunkPageRequest): ChunkPage {
  const one = entryIds.length === 1;
  const key = one ? "seq" : "id";
  const where = one ? "entry_id = ?" : `entry_id IN (${entryIds.map(() => "?").join(", ")})`;
  const columns = request.phase === "lines" ? `${key} AS key, entry_id, newlines` : `${key} AS key, entry_id, newlines, data`;
  const sql = `SELECT ${columns} FROM chunks WHERE ${where} AND ${key} > ? ORDER BY ${key} LIMIT ?`;
  return db.prepare(sql).all(...entryIds, request.after, request.limit) as ChunkPage;
}

let pendingPage: ((page: ChunkPage) => void) | null = null;

/** A page asked of the server's thread (PostgreSQL, or an in-memory SQLite database this worker cannot open). */
function remotePage(id: number, request: ChunkPageRequest): Promise<ChunkPage> {
  return new Promise((resolve) => {
    pendingPage = resolve;
    post({ kind: "fetch", id, ...request });
  });
}

async function search(job: SearchJob): Promise<void> {
  const db = job.source.kind === "file" ? open(job.source.file, job.source.driver) : null;
  const page = (request: ChunkPageRequest) => (db ? Promise.resolve(localPage(db, job.entryIds, request)) : remotePage(job.id, request));
  const { query } = job;
  // The chunk holding the start of the first line kept (context before `fromLine` included), found by the channels'
  // newline counts alone (no data read); line L starts after the (L - 1)th newline.
  const first = Math.max(1, query.fromLine - query.before);
  let after = 0;
  let passed = 0;
  if (first > 1) {
    for (;;) {
      const rows = await page({ phase: "lines", after, limit: LINES_PAGE });
      let found = false;
      for (const row of rows) {
        if (passed + row.newlines >= first - 1) {
          found = true;
          break;
        }
        passed += row.newlines;
        after = row.key;
      }
      if (found || rows.length < LINES_PAGE) break;
    }
  }
  const matcher = new LineMatcher(query, passed + 1);
  const report = (kind: "progress" | "done", progress: MatchProgress) => post({ kind, id: job.id, ...progress });
  for (;;) {
    const rows = await page({ phase: "data", after, limit: DATA_PAGE });
    for (const row of rows) {
      after = row.key;
      // A Buffer posted from the server's thread arrives as a plain Uint8Array: viewed as a Buffer again, not copied.
      const data = Buffer.isBuffer(row.data) ? row.data : Buffer.from(row.data!.buffer, row.data!.byteOffset, row.data!.byteLength);
      if (matcher.feed(row.entry_id, data)) return report("done", matcher.end());
    }
    if (rows.length < DATA_PAGE) return report("done", matcher.end());
    report("progress", matcher.progress());
  }
}

parentPort.on("message", (message: WorkerRequest) => {
  if (message.kind === "rows") {
    const resolve = pendingPage;
    pendingPage = null;
    resolve?.(message.rows);
    return;
  }
  search(message).catch((error: unknown) => post({ kind: "error", id: message.id, message: error instanceof Error ? error.message : String(error) }));
});
