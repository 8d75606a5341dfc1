import { Worker } from "node:worker_threads";
import { program } from "../../program.js";
import { SQLITE_PACKAGES, sqliteDriverPath } from "../sqlite/sqlite-driver.js";
import type { SqliteStore } from "../sqlite/sqlite-store.js";
import type { Store } from "../store.js";
import type { SearchMatch, SearchQuery } from "./search-match.js";
import type { ChunkPage, ChunkPageRequest, SearchJob, WorkerReply } from "./search-protocol.js";

export { compileQuery, MAX_LINE_BYTES, MAX_TEXT_CHARS, type SearchMatch, type SearchQuery } from "./search-match.js";

/**
 * entry/search's store side: each search runs in a worker thread (search-worker.ts), never on the server's thread.
 * On SQLite the worker reads the database file through a read-only connection of its own, so the server's thread
 * does nothing for it but wait; on PostgreSQL (and an in-memory SQLite database) the worker asks this thread for
 * each page of chunks, read through Kysely (an await between pages). A search that passes its time budget has its
 * worker ended (the one way to stop a regular expression that backtracks) and answers what it found so far.
 */

export interface SearchOutcome {
  matches: SearchMatch[];
  /** The first line not searched whole, when the search stopped before the end of what is stored. */
  nextLine: number | undefined;
  /** Lines passed (all of the view's when it reached the end). */
  lines: number;
  /** The budget ended the search (nextLine says where to go on). */
  timedOut: boolean;
}

/** A search whose budget ran out before it got past its first page: nothing to answer, nowhere to go on from. */
export class SearchTimedOut extends Error {
  constructor(readonly budgetMs: number) {
    super(`the search passed its time budget of ${budgetMs} ms`);
  }
}

/** Searches waiting for a worker, all together or of one share, past which one is refused. */
export class SearchQueueFull extends Error {
  constructor(
    message: string,
    /** The setting that bounds it, when it is one. */
    readonly limit?: string,
  ) {
    super(message);
  }
}

export interface SearchLimits {
  /** Workers (searches at once) at most. */
  workers: number;
  /** Searches waiting for one at most. */
  queued: number;
}

/**
 * Whose search it is: the share it counts against (the principal whose bounds the caller's credential counts
 * against), in words for a refusal, how many it may have running or waiting (null: no bound of its own, the server's
 * own searches), and how many it may queue past `queued` (the home's reserve).
 */
export interface SearchShare {
  key: string;
  name: string;
  bound: number | null;
  reserve: number;
}

/** The server's own searches (no caller named): one share of their own. */
const SERVER_SHARE: SearchShare = { key: "", name: "the server", bound: null, reserve: 0 };

interface ShareQueue {
  running: number;
  waiting: { start: () => void }[];
}

/** Milliseconds an idle worker is kept for the next search. */
const IDLE_MS = 30_000;

interface Slot {
  worker: Worker;
  idle: NodeJS.Timeout | null;
  /** Resolves once the worker runs (its start, and the bundling of its sources under tsx, are not the search's time). */
  online: Promise<void>;
}

/**
 * The search pool of one store, shared fairly: while others wait, one share runs at most one search less than the
 * workers there are (one when there is one), and a worker that frees goes to the next share waiting, round robin, so
 * one principal's searches — however many, however slow — delay another's by one search at most.
 */
export function chunkSearch(store: Store, limits: SearchLimits = { workers: 2, queued: 64 }) {
  const file = store.kind === "sqlite" && (store as SqliteStore).file !== ":memory:" ? (store as SqliteStore).file : null;
  const source: SearchJob["source"] = file ? { kind: "file", file, driver: sqliteDriverPath() } : { kind: "remote" };
  const workers = workerPool();
  const turns = fairTurns(limits);
  let nextId = 0;

  /** Searches the chunks of `entryIds` (one channel, or several merged in stored order) within `budgetMs`, in `share`'s turn. */
  async function search(
    entryIds: readonly number[],
    query: SearchQuery,
    budgetMs: number,
    signal?: AbortSignal,
    share: SearchShare = SERVER_SHARE,
  ): Promise<SearchOutcome> {
    await turns.acquire(share, signal);
    const slot = workers.take();
    // A search under way keeps the process alive (an idle worker does not).
    slot.worker.ref();
    await slot.online;
    const job: SearchJob = { kind: "search", id: ++nextId, source, entryIds: [...entryIds], query };
    const end = (kept: boolean) => {
      if (kept) workers.putBack(slot);
      turns.release(share);
    };
    return runJob(slot, job, budgetMs, signal, (request) => pageOf(store, entryIds, request), end);
  }

  return { search };
}

/** The workers of one pool: an idle one is kept IDLE_MS for the next search, then ended. */
function workerPool() {
  const idle: Slot[] = [];
  const spawn = (): Slot => {
    const code = program(import.meta.url, "search-worker", SQLITE_PACKAGES);
    const worker = new Worker(code.file ?? code.source, { eval: code.file === null });
    worker.unref();
    const online = new Promise<void>((resolve) => {
      worker.once("online", resolve);
      worker.once("exit", () => resolve());
    });
    const slot: Slot = { worker, idle: null, online };
    // A worker that fails between searches is dropped (the running search has its own listeners).
    worker.on("error", () => undefined);
    worker.once("exit", () => {
      const at = idle.indexOf(slot);
      if (at !== -1) idle.splice(at, 1);
      if (slot.idle) clearTimeout(slot.idle);
    });
    return slot;
  };
  return {
    /** An idle worker, or a new one. */
    take(): Slot {
      const slot = idle.pop() ?? spawn();
      if (slot.idle) clearTimeout(slot.idle);
      slot.idle = null;
      return slot;
    },
    /** A worker whose search ended as it should, kept for the next. */
    putBack(slot: Slot): void {
      slot.idle = setTimeout(() => {
        idle.splice(idle.indexOf(slot), 1);
        void slot.worker.terminate();
      }, IDLE_MS);
      slot.idle.unref();
      idle.push(slot);
    },
  };
}

/**
 * The turns of the shares: at most `limits.workers` searches at once, `perShare` of one share while others wait,
 * `limits.queued` (and a share's reserve) waiting; a search that ends hands its turn to the next share waiting.
 */
function fairTurns(limits: SearchLimits) {
  let running = 0;
  let queued = 0;
  const shares = new Map<string, ShareQueue>();
  /** Shares with searches waiting, in the order the next free worker serves them. */
  const turns: string[] = [];
  const perShare = Math.max(1, limits.workers - 1);

  const queueOf = (key: string): ShareQueue => {
    let queue = shares.get(key);
    if (!queue) shares.set(key, (queue = { running: 0, waiting: [] }));
    return queue;
  };
  const forget = (key: string, queue: ShareQueue) => {
    if (queue.running === 0 && queue.waiting.length === 0) shares.delete(key);
  };
  /** Free workers to the shares waiting, in turn, each up to its part of the pool. */
  const dispatch = () => {
    for (let tried = 0; running < limits.workers && tried < turns.length; ) {
      const key = turns.shift()!;
      const queue = queueOf(key);
      if (queue.running >= perShare) {
        turns.push(key);
        tried++;
        continue;
      }
      tried = 0;
      const next = queue.waiting.shift()!;
      if (queue.waiting.length > 0) turns.push(key);
      queued--;
      next.start();
    }
  };
  /** Waits in the share's queue until `start` is called, or `signal` aborts (the waiter leaves the queue). */
  const wait = (share: SearchShare, queue: ShareQueue, signal: AbortSignal | undefined) =>
    new Promise<void>((resolve, reject) => {
      const waiter = {
        start: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const at = queue.waiting.indexOf(waiter);
        if (at === -1) return;
        queue.waiting.splice(at, 1);
        queued--;
        if (queue.waiting.length === 0 && turns.includes(share.key)) turns.splice(turns.indexOf(share.key), 1);
        forget(share.key, queue);
        reject(signal?.reason ?? new Error("search aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.waiting.push(waiter);
      if (!turns.includes(share.key)) turns.push(share.key);
    });

  return {
    /** Resolves when it is the share's turn to run a search; SearchQueueFull past its bound or the queue's. */
    async acquire(share: SearchShare, signal: AbortSignal | undefined): Promise<void> {
      const queue = queueOf(share.key);
      const held = queue.running + queue.waiting.length;
      if (share.bound !== null && held >= share.bound) {
        forget(share.key, queue);
        throw new SearchQueueFull(
          `${share.name} has ${held} searches running or waiting (limits.maxSearchesPerPrincipal ${share.bound})`,
          "maxSearchesPerPrincipal",
        );
      }
      if (running >= limits.workers || queue.running >= perShare || queue.waiting.length > 0) {
        if (queued >= limits.queued + share.reserve) {
          forget(share.key, queue);
          throw new SearchQueueFull(`${limits.queued} searches are waiting already; try again shortly`);
        }
        queued++;
        await wait(share, queue, signal);
      }
      running++;
      queue.running++;
    },
    /** The share's search ended: its turn goes to the next waiting. */
    release(share: SearchShare): void {
      running--;
      const queue = queueOf(share.key);
      queue.running--;
      forget(share.key, queue);
      dispatch();
    },
  };
}

/** A page of the searched chunks through Kysely, for a worker that cannot open the database itself. */
function pageOf(store: Store, entryIds: readonly number[], request: ChunkPageRequest): Promise<ChunkPage> {
  const key = entryIds.length === 1 ? "seq" : "id";
  let query = store.db
    .selectFrom("chunks")
    .select([`${key} as key`, "entry_id", "newlines"])
    .where("entry_id", "in", [...entryIds])
    .where(key, ">", request.after)
    .orderBy(key)
    .limit(request.limit);
  if (request.phase === "data") query = query.select("data");
  return query.execute() as Promise<ChunkPage>;
}

/**
 * Runs one job on a worker within `budgetMs`, answering its requests for pages with `page`; `end` is told once, as it
 * settles, whether the worker may be kept (it finished) or was ended (the budget, an abort, an error).
 */
function runJob(
  slot: Slot,
  job: SearchJob,
  budgetMs: number,
  signal: AbortSignal | undefined,
  page: (request: ChunkPageRequest) => Promise<ChunkPage>,
  end: (kept: boolean) => void,
): Promise<SearchOutcome> {
  const { id, query } = job;
  const found: SearchMatch[] = [];
  let reached = query.fromLine;
  let lines = 0;
  return new Promise<SearchOutcome>((resolve, reject) => {
    let settled = false;
    const finish = (kept: boolean, settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
      slot.worker.off("message", onMessage);
      slot.worker.off("error", onError);
      slot.worker.off("exit", onExit);
      slot.worker.unref();
      if (!kept) void slot.worker.terminate();
      end(kept);
      settle();
    };
    const cut = () =>
      finish(false, () => {
        if (found.length === 0 && reached <= query.fromLine) reject(new SearchTimedOut(budgetMs));
        else resolve({ matches: found, nextLine: reached, lines, timedOut: true });
      });
    const abort = () => finish(false, () => reject(signal?.reason ?? new Error("search aborted")));
    const onError = (error: Error) => finish(false, () => reject(error));
    const onExit = () => finish(false, () => reject(new Error("the search worker stopped")));
    const onMessage = (message: WorkerReply) => {
      if (message.id !== id) return;
      if (message.kind === "fetch") {
        page(message).then(
          (rows) => !settled && slot.worker.postMessage({ kind: "rows", id, rows }),
          (error: unknown) => finish(false, () => reject(error)),
        );
        return;
      }
      if (message.kind === "error") return finish(false, () => reject(new Error(message.message)));
      found.push(...message.matches);
      lines = message.lines;
      if (message.kind === "progress") {
        reached = message.nextLine ?? reached;
        return;
      }
      finish(true, () => resolve({ matches: found, nextLine: message.nextLine, lines, timedOut: false }));
    };
    const timer = setTimeout(cut, budgetMs);
    if (signal?.aborted) return abort();
    signal?.addEventListener("abort", abort, { once: true });
    slot.worker.on("message", onMessage);
    slot.worker.on("error", onError);
    slot.worker.once("exit", onExit);
    slot.worker.postMessage(job);
  });
}
