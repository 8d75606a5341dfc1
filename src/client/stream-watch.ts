// biome-ignore-all lint/suspicious/noExplicitAny: stream notifications arrive as parsed JSON, read field by field as the original client did
import type { MethodName, ParamsOf, ResultOf } from "../protocol/methods/index.js";
import { ENTRY } from "../protocol/status.js";
import { SpoolRpcError } from "./errors.js";

export interface StreamChunk {
  channel: number;
  seq: number;
  data: Buffer;
  /**
   * Stored before this watch subscribed (or subscribed again after a reconnect): written earlier, replayed now.
   * `spool attach` keeps the terminal queries in such output from reaching this terminal (src/cli/commands/replayed-queries.ts).
   */
  replayed: boolean;
}

/** A live watch of a producer's channels that survives reconnects (it resumes after the last seq it saw). */
export interface StreamWatch {
  /** Last seq received per channel. */
  readonly lastSeq: ReadonlyMap<number, number>;
  /** Per channel, the last seq stored when the watch began: chunks up to it were there already, later ones are live. */
  readonly stored: ReadonlyMap<number, number>;
  /** Resolves when every watched channel has ended, with each channel's terminal status. */
  readonly ended: Promise<Map<number, { status: number; exit_code?: number | null; lost?: string }>>;
  close(): Promise<void>;
}

/** What to watch: a producer's channels (one, or all), after a seq. */
export interface WatchTarget {
  run: string;
  path: string;
  channel?: number;
  after?: number;
  snapshot?: boolean;
}

/** A watch the client subscribes again after a reconnect. */
export interface Resubscribe {
  resubscribe(): Promise<void>;
}

/** The part of SpoolClient a watch and a paged read use (named here, so this file does not import the client). */
export interface CallsAndListens {
  call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
  on(method: string, listener: (params: any) => void): () => void;
}

/**
 * How a channel ended (or, with `snapshot`, that it is still streaming); `lost`: the watch could not follow it further
 * (after a reconnect the server refused its subscription) and why — what came after its `lastSeq` was not delivered.
 */
type Ending = { status: number; exit_code?: number | null; lost?: string };

/**
 * Watches a producer's channels: replays what is stored after `after`, then
 * live chunks, until every channel ends. After a reconnect, or when the
 * server drops it as too slow (`stream/lagged`), it subscribes again from
 * the last seq it received, so nothing is lost or repeated.
 * With `snapshot`, `ended` resolves once what was stored when it subscribed
 * has been delivered (a running channel then reports ENTRY.streaming).
 */
export async function watchStream(
  client: CallsAndListens,
  watches: Set<Resubscribe>,
  target: WatchTarget,
  onData: (chunk: StreamChunk) => void,
): Promise<StreamWatch> {
  const watch = new ChannelWatch(client, target, onData);
  const storedAtStart = await watch.start();
  watches.add(watch);
  void watch.ended.then(() => watches.delete(watch));
  return {
    lastSeq: watch.lastSeq,
    stored: storedAtStart,
    ended: watch.ended,
    close: () => {
      watches.delete(watch);
      return watch.close();
    },
  };
}

/**
 * One watch's state: the subscriptions that are its own, the last seq delivered and how each channel ended. Its
 * three listeners take the client's stream notifications; `deliver` runs once a chunk.
 */
class ChannelWatch implements Resubscribe {
  readonly lastSeq = new Map<number, number>();
  readonly ended: Promise<Map<number, Ending>>;
  readonly #endings = new Map<number, Ending>();
  readonly #ids = new Set<string>();
  #channels: number[] = [];
  #resolveEnded!: (value: Map<number, Ending>) => void;
  /** Per channel, the last seq stored when it was last subscribed: chunks up to it are replayed. */
  readonly #storedAt = new Map<number, number>();
  /** With `snapshot`: per channel, the seq stored when it subscribed, until it is delivered. */
  readonly #stored = new Map<number, number>();
  /**
   * Notifications for a subscription whose id is not known yet: kept only while a subscribe is in flight (they may
   * come in the same read as its reply); others are another watch's, and are not this one's to keep.
   */
  readonly #early: any[] = [];
  #subscribing = 0;
  readonly #off: (() => void)[];

  constructor(
    private readonly client: CallsAndListens,
    private readonly target: WatchTarget,
    private readonly onData: (chunk: StreamChunk) => void,
  ) {
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#off = [client.on("stream/data", this.#deliver), client.on("stream/end", this.#finish), client.on("stream/lagged", this.#lagged)];
  }

  /** Subscribes the target's channels; resolves with the last seq each had stored then. */
  async start(): Promise<Map<number, number>> {
    const { target } = this;
    const first = await this.#subscribe(target.channel, target.after ?? 0);
    this.#channels = first.channels.map((c) => c.channel);
    if (target.snapshot) {
      for (const c of first.channels) {
        if (this.#endings.has(c.channel)) continue;
        if (c.lastSeq <= Math.max(target.after ?? 0, this.lastSeq.get(c.channel) ?? 0)) this.#endings.set(c.channel, { status: c.status });
        else this.#stored.set(c.channel, c.lastSeq);
      }
    }
    for (const c of this.#channels) if (!this.lastSeq.has(c)) this.lastSeq.set(c, target.after ?? 0);
    // No channel at all ends the watch at once (the live notifications wait for one).
    if (this.#channels.every((c) => this.#endings.has(c))) this.#resolveEnded(this.#endings);
    return new Map(first.channels.map((c) => [c.channel, c.lastSeq] as const));
  }

  /**
   * After a reconnect: one subscription per unfinished channel, each from its own last seq. One the server refuses (the
   * run removed, the caller's role lowered) ends with `lost` saying why — the reader is told what it did not get — and
   * is not asked for again at every later reconnect; a connection lost meanwhile fails the whole (the client tries again).
   */
  async resubscribe(): Promise<void> {
    this.#ids.clear();
    for (const c of this.#channels.filter((c) => !this.#endings.has(c))) {
      const after = this.lastSeq.get(c) ?? 0;
      try {
        await this.#subscribe(c, after);
      } catch (error) {
        if (!(error instanceof SpoolRpcError)) throw error;
        this.#endings.set(c, { status: ENTRY.streaming, lost: `not followed after seq ${after}: ${error.message}` });
        this.#stored.delete(c);
        this.#settleWhenDone();
      }
    }
  }

  async close(): Promise<void> {
    for (const off of this.#off) off();
    for (const id of this.#ids) await this.client.call("stream/unsubscribe", { subscription: id }).catch(() => undefined);
  }

  readonly #deliver = (p: any): void => {
    if (!this.#ids.has(p.subscription)) {
      this.#keep(p);
      return;
    }
    if (p.seq <= (this.lastSeq.get(p.channel) ?? 0)) return;
    this.lastSeq.set(p.channel, p.seq);
    this.onData({ channel: p.channel, seq: p.seq, data: Buffer.from(p.chunk, p.encoding), replayed: p.seq <= (this.#storedAt.get(p.channel) ?? 0) });
    const stored = this.#stored.get(p.channel);
    if (stored !== undefined && p.seq >= stored) {
      this.#stored.delete(p.channel);
      if (!this.#endings.has(p.channel)) this.#endings.set(p.channel, { status: ENTRY.streaming });
      this.#settleWhenDone();
    }
  };

  readonly #finish = (p: any): void => {
    if (!this.#ids.has(p.subscription)) {
      this.#keep({ ...p, end: true });
      return;
    }
    this.#endings.set(p.channel, { status: p.status, ...(p.exit_code !== undefined ? { exit_code: p.exit_code } : {}) });
    this.#stored.delete(p.channel);
    this.#settleWhenDone();
  };

  /** Dropped by the server as too slow: its channels again, each from the last chunk that arrived. */
  readonly #lagged = (p: any): void => {
    if (!this.#ids.delete(p.subscription)) {
      this.#keep({ ...p, lagged: true });
      return;
    }
    for (const c of Object.keys(p.lastSeq).map(Number)) {
      if (!this.#endings.has(c)) void this.#subscribe(c, this.lastSeq.get(c) ?? 0).catch(() => undefined);
    }
  };

  #keep(p: any): void {
    if (this.#subscribing > 0) this.#early.push(p);
  }

  #settleWhenDone(): void {
    if (this.#channels.length && this.#channels.every((c) => this.#endings.has(c))) this.#resolveEnded(this.#endings);
  }

  async #subscribe(channel: number | undefined, after: number): Promise<ResultOf<"stream/subscribe">> {
    this.#subscribing++;
    let reply: ResultOf<"stream/subscribe">;
    try {
      const { run, path } = this.target;
      reply = await this.client.call("stream/subscribe", { run, path, ...(channel !== undefined ? { channel } : {}), after, encoding: "base64" });
    } finally {
      this.#subscribing--;
    }
    this.#ids.add(reply.subscription);
    for (const c of reply.channels) this.#storedAt.set(c.channel, c.lastSeq);
    // Notifications can arrive in the same read as the reply, before the id is known.
    for (const p of this.#early.splice(0)) (p.end ? this.#finish : p.lagged ? this.#lagged : this.#deliver)(p);
    return reply;
  }
}
