import type { Kysely } from "kysely";
import * as activityRows from "./activity-rows.js";
import * as allowRules from "./allow-rules.js";
import * as audit from "./audit.js";
import * as chunkReads from "./chunk-reads.js";
import * as cluster from "./cluster.js";
import * as devices from "./devices.js";
import * as entries from "./entries.js";
import * as loops from "./loops.js";
import * as messages from "./messages.js";
import * as notify from "./notify.js";
import * as principals from "./principals.js";
import * as producers from "./producers.js";
import * as projects from "./projects.js";
import * as runnerNames from "./runner-names.js";
import * as runnerQueue from "./runner-queue.js";
import * as runs from "./runs.js";
import type { Database } from "./schema.js";
import { chunkSearch } from "./search/search.js";
import type { Store } from "./store.js";
import { entryReads, runReads } from "./sync-lookups.js";
import * as usage from "./usage.js";

/** A repository function with its database argument already given. */
type Bound<F> = F extends (db: Kysely<Database>, ...args: infer A) => infer R ? (...args: A) => R : never;
type BoundAll<M> = { [K in keyof M as M[K] extends (db: Kysely<Database>, ...args: never[]) => unknown ? K : never]: Bound<M[K]> };

function bind<M extends Record<string, unknown>>(db: Kysely<Database>, module: M): BoundAll<M> {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(module)) {
    if (typeof fn === "function" && fn.length >= 1) out[name] = (...args: unknown[]) => (fn as (...a: unknown[]) => unknown)(db, ...args);
  }
  return out as BoundAll<M>;
}

/**
 * Every query Spool makes, one repository per table, bound to one database.
 * This is what the core and the plugins receive; nothing outside src/store
 * sees the database handle.
 */
export function createRepositories(store: Store) {
  const db = store.db;
  return {
    projects: bind(db, projects),
    runs: { ...bind(db, runs), ...runReads(store) },
    entries: {
      ...bind(db, entries),
      ...entryReads(store),
      pathsWithPrefix: (runId: number, prefix: string) => entries.pathsWithPrefix(db, runId, prefix, store.kind === "sqlite"),
    },
    loops: bind(db, loops),
    messages: bind(db, messages),
    producers: bind(db, producers),
    usage: bind(db, usage),
    allowRules: bind(db, allowRules),
    principals: bind(db, principals),
    devices: bind(db, devices),
    notify: {
      ...bind(db, notify),
      claimDue: (now: number, until: number, limit: number, scope?: { exclude?: readonly number[]; target?: number }) =>
        notify.claimDue(db, store.kind === "postgres", now, until, limit, scope),
    },
    audit: bind(db, audit),
    activity: activityRows.activityWrites(store),
    cluster: bind(db, cluster),
    runnerNames: bind(db, runnerNames),
    queue: bind(db, runnerQueue),
    chunks: {
      ...chunkReads.chunkReads(store),
      /** Searches channels' stored output in a worker thread (entry/search). */
      search: chunkSearch(store).search,
      /** Appends a chunk (group-committed); `open` is the status of a channel that still takes appends. */
      append: (entryId: number, data: Buffer, seq: number | undefined, open: number) => store.appendChunk(entryId, data, seq, open),
    },
  };
}

export type Repositories = ReturnType<typeof createRepositories>;
export type { LineRead } from "./chunk-reads.js";
export { type Attributes, lineCount, wireAttributes } from "./entries.js";
export { UniqueViolation } from "./errors.js";
export { type AppendOutcome, countNewlines } from "./store.js";
