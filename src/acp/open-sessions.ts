import { RequestError } from "@agentclientprotocol/sdk";
import type { Logger } from "../logger.js";

/**
 * Sessions one connection (one `spool acp`, one /acp connection) has open at once: each follows its run's
 * notifications and holds its tool calls. A session/new or session/load past it closes the least recently used
 * session with no prompt running (its run goes on; session/load opens it again); with every one prompting it is
 * refused, and no run is made.
 */
export const MAX_OPEN_SESSIONS = 64;

/** What the table needs of a session: its id, whether a prompt is running in it, and how to stop showing its run. */
export interface OpenSession {
  readonly id: string;
  readonly busy: boolean;
  close(): Promise<void>;
}

/** A connection's open sessions, the least recently used first, at most `most` of them (places being made included). */
export class OpenSessions<S extends OpenSession> {
  readonly #sessions = new Map<string, S>();
  /** Sessions being made: a place taken by `reserve`, not yet added. */
  #opening = 0;
  /** Set by closeAll: the connection is gone, and a session made after it is closed at once. */
  #closed = false;

  constructor(
    private readonly log: Logger,
    readonly most = MAX_OPEN_SESSIONS,
  ) {}

  /** The session of `id`, now the most recently used; undefined when it is not open. */
  use(id: string): S | undefined {
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    this.#sessions.delete(id);
    this.#sessions.set(id, session);
    return session;
  }

  has(id: string): boolean {
    return this.#sessions.has(id);
  }

  /** Without using it (a cancel, a close). */
  peek(id: string): S | undefined {
    return this.#sessions.get(id);
  }

  values(): IterableIterator<S> {
    return this.#sessions.values();
  }

  /** Added as the most recently used; the same run opened twice at once keeps the later one, the earlier stops showing it. */
  add(session: S): void {
    if (this.#closed) {
      void session.close();
      return;
    }
    const twin = this.#sessions.get(session.id);
    this.#sessions.delete(session.id);
    if (twin) void twin.close();
    this.#sessions.set(session.id, session);
  }

  delete(id: string): void {
    this.#sessions.delete(id);
  }

  /** Every session out of the table, closed. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const session of all) await session.close();
  }

  /**
   * A place for one more session, taken before anything is made; the returned function gives it back once the session
   * is added, or its making failed. At the bound the least recently used idle session is closed; with none idle, refused.
   */
  async reserve(): Promise<() => void> {
    let evicted: S | undefined;
    if (this.#sessions.size + this.#opening >= this.most) {
      evicted = [...this.#sessions.values()].find((s) => !s.busy);
      if (!evicted) {
        throw new RequestError(
          -32603,
          `This connection has ${this.#sessions.size + this.#opening} sessions open, each with a prompt running, the most it keeps (${this.most}); close one (session/close) or wait for a prompt to end`,
          { limit: this.most },
        );
      }
      this.#sessions.delete(evicted.id);
    }
    this.#opening++;
    let given = false;
    const giveBack = () => {
      if (!given) this.#opening--;
      given = true;
    };
    if (evicted) {
      this.log.info(`acp: session ${evicted.id} closed to make room (${this.most} open on this connection); session/load opens it again`);
      await evicted
        .close()
        .catch((error: unknown) => this.log.warn(`acp: closing session ${evicted.id}: ${error instanceof Error ? error.message : String(error)}`));
    }
    return giveBack;
  }
}
