import type pg from "pg";
import type { Logger } from "../logger.js";
import {
  aliveServers,
  type ClusterEvent,
  holdAliveLock,
  lastEventSeqs,
  listen,
  notify,
  pruneEvents,
  publishEvent,
  readEvent,
} from "../store/postgres/cluster-events.js";
import type { Bus, BusHandlers, BusMessage } from "./bus.js";
import { signEvent, verifyEvent } from "./bus-auth.js";

/** The advisory-lock namespace (first key) under which each server holds a lock on its id while it lives. */
const ALIVE_NS = 0x5370_6f6f; // "Spoo"
const CHANNEL = "spool_cluster";
/** NOTIFY payloads stay under PostgreSQL's 8000-byte limit with room to spare. */
const MAX_PAYLOAD = 7000;
/** Messages waiting to be sent, or received and waiting to be handled, at most. */
const MAX_QUEUED = 10_000;
/** Channels whose last chunk mark a server alone on the database keeps unsent, at most (the channels appended to last). */
const HELD_MARKS = 4096;
/** Channels whose new chunks are read at the same time when marks come in. */
const MARK_READERS = 8;
/** Announcements older than this are pruned, and not acted on (a row's time is under its MAC). */
const EVENT_TTL_MS = 5 * 60_000;
/** Rows dropped for failing authentication are logged at most this often (with how many since). */
const DROP_LOG_MS = 60_000;

/** The only messages sent in a NOTIFY rather than a row: the model's `run/progress` deltas. */
const isInlineMessage = (message: BusMessage) => message.t === "notify" && message.method === "run/progress";

export interface PostgresBusOptions {
  /** The key rows are signed and checked with (busKey of the token the servers share). */
  key: Buffer;
  /** How often the servers alive are looked at (a server that died is noticed within this). */
  pollMs?: number;
}

/**
 * The bus over PostgreSQL: LISTEN/NOTIFY on one channel with small payloads
 * (an event's id, or chunk marks), the messages themselves in
 * `cluster_events` (the model's `run/progress` deltas, when they fit, signed
 * inside the NOTIFY itself: no row, no read), and liveness from the database: each server holds an
 * advisory lock on its id on its listening connection, which PostgreSQL
 * releases when that session ends, whatever killed the server.
 *
 * Every row is signed (bus-auth.ts) and numbered per sender; a row is acted
 * on only when its MAC is good, it comes from another server, its seq is
 * above the last one taken from that server (or stored when this server
 * started listening), it is younger than EVENT_TTL_MS and what it names as
 * its sender and addressee agree with the row. Others are dropped and logged.
 * Chunk marks are not rows and carry no MAC: all they make a server do is
 * read committed chunks of a channel its watchers watch.
 *
 * A server alone on the database sends no chunk marks (nobody would read them; on the load bench they were a
 * NOTIFY per turn of the event loop with appends): it keeps the last one per channel, for the HELD_MARKS channels
 * appended to last, and sends those as soon as another server is known to be alive, so that server's watchers
 * read what was committed before it was known. A server says `h:<id>` when it starts listening, so the others
 * know it at once rather than at their next look at the servers alive (pollMs).
 */
export class PostgresBus implements Bus {
  readonly shared = true;
  #client: pg.Client | null = null;
  #handlers: BusHandlers | null = null;
  #known = new Set<number>();
  /** Another server is alive (as #known says, or it said hello since the last look began): chunk marks go out. */
  #others = false;
  /** When the last hello of another server came (performance.now()). */
  #helloAt = Number.NEGATIVE_INFINITY;
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
  /** This server's rows: the seq of the last one sent. */
  #seq = 0;
  /** Per other server: the highest seq of its rows taken (or stored before this server listened); lower ones are replays. */
  readonly #lastSeq = new Map<number, number>();
  #dropped = 0;
  #droppedTotal = 0;
  #dropLoggedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    readonly serverId: number,
    private readonly log: Logger,
    private readonly options: PostgresBusOptions,
  ) {}

  /** Rows of other servers dropped unread since this bus started (failed authentication, replays). */
  get dropped(): number {
    return this.#droppedTotal;
  }

  async start(handlers: BusHandlers): Promise<void> {
    this.#handlers = handlers;
    // Rows stored before this server listens are not for it: none is taken later (a copy keeps its seq).
    for (const [server, seq] of await lastEventSeqs(this.pool)) this.#lastSeq.set(server, seq);
    await this.#listen();
    this.#known = new Set(await this.alive());
    this.#others = [...this.#known].some((id) => id !== this.serverId);
    const pollMs = this.options.pollMs ?? 1000;
    this.#poll = setInterval(
      () => void this.#look().catch((error: unknown) => this.log.warn(`cluster: could not look at the servers alive: ${String(error)}`)),
      pollMs,
    );
    this.#poll.unref();
    this.#prune = setInterval(() => void pruneEvents(this.pool, Date.now() - EVENT_TTL_MS).catch(() => undefined), 60_000);
    this.#prune.unref();
  }

  /** The listening connection: it holds this server's liveness lock and receives the others' payloads. */
  async #listen(): Promise<void> {
    const { default: pg } = await import("pg");
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
    await holdAliveLock(client, ALIVE_NS, this.serverId);
    client.on("notification", (n) => {
      if (n.channel === CHANNEL && n.payload) this.#received(n.payload);
    });
    await listen(client, CHANNEL);
    this.#client = client;
    // The others send their chunk marks from now on (a server alone holds them back).
    this.#enqueueOut(() => notify(client, CHANNEL, `h:${this.serverId}`));
  }

  async alive(): Promise<number[]> {
    const ids = new Set(await aliveServers(this.pool, ALIVE_NS));
    ids.add(this.serverId);
    return [...ids].sort((a, b) => a - b);
  }

  async #look(): Promise<void> {
    const asked = performance.now();
    const now = new Set(await this.alive());
    const gone = [...this.#known].filter((id) => !now.has(id));
    this.#known = now;
    // A hello that came while the database was asked may be from a server the answer does not show yet.
    this.#setOthers([...now].some((id) => id !== this.serverId) || this.#helloAt >= asked);
    if (gone.length) this.#enqueueIn(() => this.#handlers!.gone(gone));
  }

  publish(message: BusMessage): void {
    this.#flushMarks();
    const to = "to" in message ? String(message.to) : "*";
    // Numbered when queued: rows go out one at a time in this order, so a server's seqs rise with its rows.
    const seq = ++this.#seq;
    const body = JSON.stringify(message);
    if (isInlineMessage(message)) {
      // The model's deltas: small, many, and of no use later. Signed like a row but sent in the NOTIFY itself,
      // so the others need no read of cluster_events for each (nor this server an INSERT), when it fits.
      const row = { server_id: this.serverId, seq, body, created_at: Date.now() };
      const payload = `i:${this.serverId}:${to}:${seq}:${row.created_at}:${signEvent(this.options.key, row)}:${body}`;
      if (payload.length <= MAX_PAYLOAD) {
        this.#enqueueOut(() => notify(this.#sender(), CHANNEL, payload));
        return;
      }
    }
    this.#enqueueOut(async () => {
      const row = { server_id: this.serverId, seq, body, created_at: Date.now() };
      await publishEvent(this.#sender(), CHANNEL, { ...row, mac: signEvent(this.options.key, row) }, `e:${this.serverId}:`, `:${to}`);
    });
  }

  chunk(entryId: number, seq: number): void {
    if (!this.#others) {
      // Alone: held, the channel's mark moved to the back (the least recently appended go first past the bound).
      this.#marks.delete(entryId);
      this.#marks.set(entryId, seq);
      if (this.#marks.size > HELD_MARKS) this.#marks.delete(this.#marks.keys().next().value!);
      return;
    }
    this.#marks.set(entryId, seq);
    this.#markFlush ??= setImmediate(() => this.#flushMarks());
  }

  /** Whether another server is alive; once one is, the marks held while alone go out. */
  #setOthers(others: boolean): void {
    const joined = others && !this.#others;
    this.#others = others;
    if (joined) this.#flushMarks();
  }

  #flushMarks(): void {
    if (this.#markFlush) clearImmediate(this.#markFlush);
    this.#markFlush = null;
    if (this.#marks.size === 0 || !this.#others) return;
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
    for (const payload of payloads) this.#enqueueOut(() => notify(this.#sender(), CHANNEL, payload));
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
    if (payload.startsWith("i:")) {
      this.#receivedInline(payload);
      return;
    }
    if (payload.startsWith("h:")) {
      // Unsigned, like the marks: all a hello does is make this server send its chunk marks until its next look.
      if (Number(payload.slice(2)) !== this.serverId) {
        this.#helloAt = performance.now();
        this.#setOthers(true);
      }
      return;
    }
    const [kind, origin, rest, to] = payload.split(":");
    const from = Number(origin);
    if (from === this.serverId || !this.#handlers) return;
    if (kind === "e") {
      if (to !== "*" && Number(to) !== this.serverId) return;
      const id = Number(rest);
      if (!Number.isSafeInteger(id)) return;
      this.#enqueueIn(async () => {
        const row = await readEvent(this.pool, id);
        if (!row) return;
        const message = this.#authentic(row, from);
        if (message) await this.#handlers!.message(message, row.server_id);
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

  /**
   * A message sent in its NOTIFY (`i:server:to:seq:created_at:mac:body`): checked as a row would be, in order with
   * the others. Only `run/progress` notifications travel this way; an inline payload is stored nowhere, so a server
   * started later has no seq to refuse a captured one by, and anything else inline is dropped.
   */
  #receivedInline(payload: string): void {
    const fields: string[] = [];
    let at = 2;
    for (let i = 0; i < 5; i++) {
      const end = payload.indexOf(":", at);
      if (end === -1) return;
      fields.push(payload.slice(at, end));
      at = end + 1;
    }
    const [origin, to, seq, createdAt, mac] = fields as [string, string, string, string, string];
    const from = Number(origin);
    if (from === this.serverId || !this.#handlers) return;
    if (to !== "*" && Number(to) !== this.serverId) return;
    const row: ClusterEvent = { id: 0, server_id: from, seq: Number(seq), created_at: Number(createdAt), mac, body: payload.slice(at) };
    if (!Number.isSafeInteger(row.seq) || !Number.isSafeInteger(row.created_at)) return;
    this.#enqueueIn(async () => {
      const message = this.#authentic(row, from, true);
      if (message) await this.#handlers!.message(message, row.server_id);
    });
  }

  /** The row's message if this server may act on it; otherwise null, and the drop is logged (at most once a minute). */
  #authentic(row: ClusterEvent, notifiedBy: number, inline = false): BusMessage | null {
    const checked = this.#check(row, notifiedBy, inline);
    if (typeof checked !== "string") {
      this.#lastSeq.set(row.server_id, row.seq);
      return checked;
    }
    this.#dropped++;
    this.#droppedTotal++;
    const now = Date.now();
    if (now - this.#dropLoggedAt >= DROP_LOG_MS) {
      const rows = this.#dropped === 1 ? "a row" : `${this.#dropped} rows`;
      this.log.error(
        `cluster: dropped ${rows} of cluster_events unread (last: id ${row.id}, said to be from server ${row.server_id}: ${checked}). Rows are signed with a key derived from the token: do all servers on this database share one token file (SPOOL_TOKEN_FILE)? If they do, something else writes to the database.`,
      );
      this.#dropLoggedAt = now;
      this.#dropped = 0;
    }
    return null;
  }

  /** The row's message, or why it may not be acted on (`inline`: it came in a NOTIFY, not a row). */
  #check(row: ClusterEvent, notifiedBy: number, inline: boolean): BusMessage | string {
    if (!verifyEvent(this.options.key, row, row.mac)) return row.mac ? "wrong MAC" : "no MAC";
    if (row.server_id === this.serverId) return "this server's own row, notified again";
    if (row.server_id !== notifiedBy) return `notified as server ${notifiedBy}'s`;
    if (row.seq <= (this.#lastSeq.get(row.server_id) ?? 0)) return `seq ${row.seq} was taken already (a replay)`;
    if (Math.abs(Date.now() - row.created_at) > EVENT_TTL_MS) return "its time is over 5 minutes from this server's clock (a replay, or clocks apart)";
    let message: BusMessage;
    try {
      message = JSON.parse(row.body) as BusMessage;
    } catch {
      return "a body that is not JSON";
    }
    if (typeof message !== "object" || message === null || typeof message.t !== "string") return "no message in its body";
    if ("to" in message && message.to !== this.serverId) return `addressed to server ${message.to}`;
    if ("from" in message && message.from !== row.server_id) return `a message naming server ${message.from} as its sender`;
    if (message.t === "owned" && message.server !== row.server_id) return `a claim for server ${message.server}`;
    if (inline && !isInlineMessage(message)) return `a "${message.t}" message sent inline (only run/progress notifications are)`;
    return message;
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
