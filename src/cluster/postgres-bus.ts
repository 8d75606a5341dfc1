import pg from "pg";
import type { Logger } from "../logger.js";
import type { Bus, BusHandlers, BusMessage } from "./bus.js";

/** The advisory-lock namespace (first key) under which each server holds a lock on its id while it lives. */
const ALIVE_NS = 0x5370_6f6f; // "Spoo"
const CHANNEL = "spool_cluster";
/** NOTIFY payloads stay under PostgreSQL's 8000-byte limit with room to spare. */
const MAX_PAYLOAD = 7000;
/** Messages waiting to be sent, or received and waiting to be handled, at most. */
const MAX_QUEUED = 10_000;
/** Channels whose new chunks are read at the same time when marks come in. */
const MARK_READERS = 8;
/** Announcements older than this are pruned. */
const EVENT_TTL_MS = 5 * 60_000;

export interface PostgresBusOptions {
  /** How often the servers alive are looked at (a server that died is noticed within this). */
  pollMs?: number;
}

/**
 * The bus over PostgreSQL: LISTEN/NOTIFY on one channel with small payloads
 * (an event's id, or chunk marks), the messages themselves in
 * `cluster_events`, and liveness from the database: each server holds an
 * advisory lock on its id on its listening connection, which PostgreSQL
 * releases when that session ends, whatever killed the server.
 */
export class PostgresBus implements Bus {
  readonly shared = true;
  #client: pg.Client | null = null;
  #handlers: BusHandlers | null = null;
  #known = new Set<number>();
  #poll: NodeJS.Timeout | null = null;
  #prune: NodeJS.Timeout | null = null;
  #closed = false;
  /** Sending, in order: chunk marks first, then each message. */
  #outbox: Promise<void> = Promise.resolve();
  #outboxSize = 0;
  readonly #marks = new Map<number, number>();
  #markFlush: NodeJS.Immediate | null = null;
  /** Handling what arrived, in order. */
  #inbox: Promise<void> = Promise.resolve();
  #inboxSize = 0;
  /** Chunk marks received and not yet handled: the highest seq per channel (one entry per channel at most). */
  readonly #marksIn = new Map<number, number>();
  #draining = false;

  constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    readonly serverId: number,
    private readonly log: Logger,
    private readonly options: PostgresBusOptions = {},
  ) {}

  async start(handlers: BusHandlers): Promise<void> {
    this.#handlers = handlers;
    await this.#listen();
    this.#known = new Set(await this.alive());
    const pollMs = this.options.pollMs ?? 1000;
    this.#poll = setInterval(
      () => void this.#look().catch((error: unknown) => this.log.warn(`cluster: could not look at the servers alive: ${String(error)}`)),
      pollMs,
    );
    this.#poll.unref();
    this.#prune = setInterval(
      () => void this.pool.query("DELETE FROM cluster_events WHERE created_at < $1", [Date.now() - EVENT_TTL_MS]).catch(() => undefined),
      60_000,
    );
    this.#prune.unref();
  }

  /** The listening connection: it holds this server's liveness lock and receives the others' payloads. */
  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: `spool-server-${this.serverId}` });
    client.on("error", (error) => {
      if (this.#closed) return;
      // Without this session the others take this server for dead and adopt its producers; it stops taking part.
      this.log.error(`cluster: the listening connection to PostgreSQL failed (${error.message}); reconnecting`);
      this.#client = null;
      const retry = () => {
        if (this.#closed) return;
        this.#listen().catch((again: unknown) => {
          this.log.warn(`cluster: reconnect failed: ${String(again)}`);
          setTimeout(retry, 1000).unref();
        });
      };
      setTimeout(retry, 200).unref();
    });
    await client.connect();
    await client.query("SELECT pg_advisory_lock($1, $2)", [ALIVE_NS, this.serverId]);
    client.on("notification", (n) => {
      if (n.channel === CHANNEL && n.payload) this.#received(n.payload);
    });
    await client.query(`LISTEN ${CHANNEL}`);
    this.#client = client;
  }

  async alive(): Promise<number[]> {
    const result = await this.pool.query<{ id: number }>(
      "SELECT objid::bigint AS id FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = $1::oid AND objsubid = 2 AND granted",
      [ALIVE_NS],
    );
    const ids = new Set(result.rows.map((r) => Number(r.id)));
    ids.add(this.serverId);
    return [...ids].sort((a, b) => a - b);
  }

  async #look(): Promise<void> {
    const now = new Set(await this.alive());
    const gone = [...this.#known].filter((id) => !now.has(id));
    this.#known = now;
    if (gone.length) this.#enqueueIn(() => this.#handlers!.gone(gone));
  }

  publish(message: BusMessage): void {
    this.#flushMarks();
    const to = "to" in message ? String(message.to) : "*";
    this.#enqueueOut(async () => {
      await this.#sender().query(
        `WITH e AS (INSERT INTO cluster_events (server_id, body, created_at) VALUES ($1, $2, $3) RETURNING id)
         SELECT pg_notify('${CHANNEL}', $4 || e.id || ':' || $5) FROM e`,
        [this.serverId, JSON.stringify(message), Date.now(), `e:${this.serverId}:`, to],
      );
    });
  }

  chunk(entryId: number, seq: number): void {
    this.#marks.set(entryId, seq);
    this.#markFlush ??= setImmediate(() => this.#flushMarks());
  }

  #flushMarks(): void {
    if (this.#markFlush) clearImmediate(this.#markFlush);
    this.#markFlush = null;
    if (this.#marks.size === 0) return;
    const payloads: string[] = [];
    let current = `c:${this.serverId}:`;
    let empty = true;
    for (const [entry, seq] of this.#marks) {
      const mark = `${entry}.${seq}`;
      if (!empty && current.length + mark.length + 1 > MAX_PAYLOAD) {
        payloads.push(current);
        current = `c:${this.serverId}:`;
        empty = true;
      }
      current += empty ? mark : `,${mark}`;
      empty = false;
    }
    payloads.push(current);
    this.#marks.clear();
    for (const payload of payloads)
      this.#enqueueOut(() =>
        this.#sender()
          .query("SELECT pg_notify($1, $2)", [CHANNEL, payload])
          .then(() => undefined),
      );
  }

  /** Sends go one at a time over the listening connection (the pool's connections stay for the store); the pool while it reconnects. */
  #sender(): pg.Client | pg.Pool {
    return this.#client ?? this.pool;
  }

  #enqueueOut(send: () => Promise<void>): void {
    if (this.#closed) return;
    if (this.#outboxSize >= MAX_QUEUED) {
      this.log.error(`cluster: ${MAX_QUEUED} messages are waiting to be sent; dropping one (is PostgreSQL reachable?)`);
      return;
    }
    this.#outboxSize++;
    this.#outbox = this.#outbox
      .then(send)
      .catch((error: unknown) => this.log.warn(`cluster: could not tell the other servers: ${String(error)}`))
      .finally(() => this.#outboxSize--);
  }

  #received(payload: string): void {
    const [kind, origin, rest, to] = payload.split(":");
    const from = Number(origin);
    if (from === this.serverId || !this.#handlers) return;
    if (kind === "e") {
      if (to !== "*" && Number(to) !== this.serverId) return;
      const id = Number(rest);
      this.#enqueueIn(async () => {
        const row = await this.pool.query<{ body: string }>("SELECT body FROM cluster_events WHERE id = $1", [id]);
        const body = row.rows[0]?.body;
        if (body) await this.#handlers!.message(JSON.parse(body) as BusMessage, from);
      });
    } else if (kind === "c" && rest) {
      // Marks are coalesced per channel and read side by side, apart from the ordered messages: a producer's
      // end reads its channels up to their last seq itself, so no mark has to come before it.
      for (const mark of rest.split(",")) {
        const [entry, seq] = mark.split(".").map(Number);
        if (!Number.isInteger(entry) || !Number.isInteger(seq)) continue;
        this.#marksIn.set(entry!, Math.max(seq!, this.#marksIn.get(entry!) ?? 0));
      }
      if (!this.#draining) void this.#drainMarks();
    }
  }

  /** Hands the marks that came in to the handler, MARK_READERS channels at a time, until none is left. */
  async #drainMarks(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#marksIn.size > 0) {
        const marks = [...this.#marksIn];
        this.#marksIn.clear();
        for (let i = 0; i < marks.length; i += MARK_READERS) {
          await Promise.all(
            marks
              .slice(i, i + MARK_READERS)
              .map(([entry, seq]) =>
                this.#handlers!.chunk(entry, seq).catch((error: unknown) =>
                  this.log.warn(`cluster: could not read chunks of entry ${entry}: ${String(error)}`),
                ),
              ),
          );
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  #enqueueIn(work: () => Promise<void>): void {
    if (this.#inboxSize >= MAX_QUEUED) {
      this.log.error(`cluster: ${MAX_QUEUED} messages from other servers are waiting; dropping one`);
      return;
    }
    this.#inboxSize++;
    this.#inbox = this.#inbox
      .then(work)
      .catch((error: unknown) => this.log.warn(`cluster: could not handle what another server said: ${String(error)}`))
      .finally(() => this.#inboxSize--);
  }

  async close(): Promise<void> {
    this.#flushMarks();
    await this.#outbox;
    this.#closed = true;
    if (this.#poll) clearInterval(this.#poll);
    if (this.#prune) clearInterval(this.#prune);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
  }
}
