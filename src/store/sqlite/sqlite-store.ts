import type SQLite from "better-sqlite3";
import type { Store } from "../store.js";
import type { BusyRetryOptions } from "./busy.js";

/** A store on SQLite (database.ts opens it): the Store, and what of SQLite its own machinery and the migrator use. */
export interface SqliteStore extends Store {
  readonly kind: "sqlite";
  /** The raw handle, for the migrator and for synchronous hot paths inside one transaction. */
  readonly sqlite: SQLite.Database;
  readonly file: string;
  /** How a write refused as busy or locked is tried again (group commits and Kysely's statements alike). */
  readonly busyRetry: BusyRetryOptions;
  /**
   * While the checkpoint worker starts the WAL over with the group commit held at its request: a promise that
   * resolves when the worker is done (the group commit waits for it instead of sleeping in SQLite's busy handler).
   */
  readonly appendsHeld?: () => Promise<void> | null;
}
