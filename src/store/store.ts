import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * The store's shape, apart from how it is opened: sqlite/database.ts opens a
 * SQLite store, postgres/postgres.ts a PostgreSQL one, each with its own group
 * commit of appends (sqlite/chunks.ts for SQLite). Kept here, with what an
 * append is, so that the two engines need not import each other.
 */

export function countNewlines(data: Buffer): number {
  let count = 0;
  for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) count++;
  return count;
}

/** What one append did (see sqlite/chunks.ts). */
export type AppendOutcome =
  | { kind: "appended"; seq: number; bytes: number; lines: number }
  | { kind: "duplicate"; seq: number; bytes: number; lines: number }
  /** The seq is stored already, with other bytes: a forgery or a confused producer. */
  | { kind: "mismatch"; seq: number }
  | { kind: "closed"; status: number }
  | { kind: "gap"; expected: number };

/** An append waiting for its engine's next group commit. */
export interface QueuedAppend {
  entryId: number;
  data: Buffer;
  seq: number | undefined;
  /** The status of a channel that still takes appends. */
  open: number;
  resolve(outcome: AppendOutcome): void;
  reject(error: unknown): void;
}

/** A database Spool keeps its state in: SQLite (the default, sqlite/sqlite-store.ts) or PostgreSQL. */
export interface Store {
  readonly kind: "sqlite" | "postgres";
  readonly db: Kysely<Database>;
  /** Where it is, for people: the SQLite file, or the PostgreSQL URL without its password. */
  readonly location: string;
  /** Appends one chunk to a streamed entry (see sqlite/chunks.ts): O(chunk), group-committed. */
  appendChunk(entryId: number, data: Buffer, seq: number | undefined, open: number): Promise<AppendOutcome>;
  close(): Promise<void>;
}
