/** The messages between the server's thread (search.ts) and a search worker (search-worker.ts). */
import type { MatchProgress, SearchQuery } from "./search-match.js";

/** Chunks of newline counts a page of the search for the first line holds (no data is read). */
export const LINES_PAGE = 4096;
/** Chunks a page of data holds (64 KiB each at most from a runner: ~2 MiB a page). */
export const DATA_PAGE = 32;

export interface ChunkPageRequest {
  phase: "lines" | "data";
  /** The key (seq for one channel, row id for several) of the last chunk taken; 0 at the start. */
  after: number;
  limit: number;
}

export type ChunkPage = { key: number; entry_id: number; newlines: number; data?: Buffer }[];

export interface SearchJob {
  kind: "search";
  id: number;
  /** The worker opens the SQLite file itself; "remote": it asks the server's thread for each page. */
  source: { kind: "file"; file: string; driver: string } | { kind: "remote" };
  entryIds: number[];
  query: SearchQuery;
}

export type WorkerRequest = SearchJob | { kind: "rows"; id: number; rows: ChunkPage };

export type WorkerReply =
  | ({ kind: "progress" | "done"; id: number } & MatchProgress)
  | ({ kind: "fetch"; id: number } & ChunkPageRequest)
  | { kind: "error"; id: number; message: string };
