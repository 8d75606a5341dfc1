import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  SqliteDialect,
  type SqliteDialectConfig,
  type TransactionSettings,
} from "kysely";
import { type BusyRetryOptions, retryBusy } from "./busy.js";

/** Retrying statements refused as busy: safe only for one that ran with no transaction open (it kept nothing). */
export interface BusyRetry {
  options: BusyRetryOptions;
  /** True while the connection has no transaction open. */
  idle(): boolean;
}

/**
 * The connection, with a statement run outside any transaction (BEGIN included) tried again when SQLite
 * refuses it as busy or locked; inside a transaction an error stays the transaction's to roll back.
 */
class RetryingConnection implements DatabaseConnection {
  constructor(
    readonly inner: DatabaseConnection,
    private readonly busy: BusyRetry,
  ) {}

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (!this.busy.idle()) return this.inner.executeQuery<R>(query);
    return retryBusy(() => this.inner.executeQuery<R>(query), this.busy.idle, this.busy.options);
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/**
 * A lock that hands over to its waiters one at a time, first come first
 * served: a release wakes exactly one waiter, so its cost does not depend on
 * how many wait.
 */
export class FifoLock {
  #held = false;
  #waiters: ((() => void) | undefined)[] = [];
  #head = 0;

  get waiting(): number {
    return this.#waiters.length - this.#head;
  }

  acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    if (this.#head === this.#waiters.length) {
      this.#held = false;
      return;
    }
    const next = this.#waiters[this.#head]!;
    this.#waiters[this.#head++] = undefined;
    if (this.#head === this.#waiters.length) {
      this.#waiters = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#head);
      this.#head = 0;
    }
    next();
  }
}

/**
 * Kysely's SQLite driver guards its one connection with a mutex whose every
 * release wakes every waiter, each of which looks again and goes back to
 * sleep: with N queries queued, each query costs O(N) and the queue O(N²)
 * (a batch of 16,000 `run/get` calls froze the server for 27 s). This driver
 * queues in front of it, FIFO, so the inner mutex is always free when asked.
 */
class FifoDriver implements Driver {
  readonly #lock = new FifoLock();
  readonly #wrapped = new WeakMap<DatabaseConnection, RetryingConnection>();
  constructor(
    private readonly inner: Driver,
    private readonly busy: BusyRetry | undefined,
  ) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#lock.acquire();
    try {
      const connection = await this.inner.acquireConnection();
      if (!this.busy) return connection;
      let wrapped = this.#wrapped.get(connection);
      if (!wrapped) this.#wrapped.set(connection, (wrapped = new RetryingConnection(connection, this.busy)));
      return wrapped;
    } catch (error) {
      this.#lock.release();
      throw error;
    }
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    try {
      await this.inner.releaseConnection(connection instanceof RetryingConnection ? connection.inner : connection);
    } finally {
      this.#lock.release();
    }
  }

  /**
   * BEGIN IMMEDIATE, not Kysely's deferred BEGIN: a transaction that reads before it writes would otherwise
   * upgrade its read snapshot to a write, and fail at once with SQLITE_BUSY_SNAPSHOT ("database is locked",
   * no busy wait) when the checkpoint worker restarted the WAL in between. Taking the write lock first makes
   * it wait (busy_timeout) instead; this connection is the only writer.
   */
  async beginTransaction(connection: DatabaseConnection, _settings: TransactionSettings): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(connection);
  }

  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]): Promise<void> {
    return this.inner.savepoint!(connection, name, compile);
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]): Promise<void> {
    return this.inner.rollbackToSavepoint!(connection, name, compile);
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]): Promise<void> {
    return this.inner.releaseSavepoint!(connection, name, compile);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** Kysely's SQLite dialect with a FIFO hand-over of its single connection. */
export class FifoSqliteDialect extends SqliteDialect {
  readonly #busy: BusyRetry | undefined;

  constructor(config: SqliteDialectConfig, busy?: BusyRetry) {
    super(config);
    this.#busy = busy;
  }

  override createDriver(): Driver {
    return new FifoDriver(super.createDriver(), this.#busy);
  }
}
