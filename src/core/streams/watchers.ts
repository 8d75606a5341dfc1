import type { ConnectionHandle } from "../../rpc/connection-context.js";
import type { ReadCap } from "../../rpc/read-cap.js";
import type { JsonStringBytes } from "../../rpc/reply-bytes.js";
import { StreamDataBytes } from "../../rpc/stream-data-bytes.js";
import { ChannelSignals } from "./channel-signals.js";

export type WatchEncoding = "utf8" | "base64";

interface ChannelWatch {
  entryId: number;
  channel: number;
  /** This watch's stream/data notifications as bytes (their fixed part made once), made at the first chunk. */
  head: StreamDataBytes | null;
  lastSent: number;
  replaying: boolean;
  /** Live chunks that arrived during replay, sent once replay catches up. */
  pending: { seq: number; data: Buffer }[];
  pendingBytes: number;
  ended: boolean;
  /** An end that arrived during replay; sent after the last chunk. */
  endNotice: EndNotice | null;
}

export interface EndNotice {
  status: number;
  exit_code?: number | null;
}

export interface Subscription {
  id: string;
  connection: ConnectionHandle;
  run: string;
  path: string;
  encoding: WatchEncoding;
  channels: Map<number, ChannelWatch>;
  closed: boolean;
}

/**
 * Live watchers of stream channels. A slow watcher never slows the producer:
 * when its connection has more than the lag limit queued, it is told
 * (`stream/lagged`, with the last seq it got per channel) and dropped; it can
 * resubscribe with `after`. Chunks held for a watcher while it replays count
 * against the server's client-memory budget.
 */
export class WatcherHub {
  /** In-process waits for a channel's next chunk or end (the agent's tools): woken at each publish and end. */
  readonly signals = new ChannelSignals();
  readonly #byEntry = new Map<number, Set<Subscription>>();
  readonly #subs = new Map<string, Subscription>();
  readonly #byConnection = new Map<ConnectionHandle, Set<Subscription>>();
  #nextId = 1;

  /** The server-wide cap on reads in flight that replay pages take their bytes from (none: pages are not capped). */
  readonly reads: ReadCap | undefined;
  /** The largest chunk a channel holds (limits.maxChunkBytes): a replay page asks the cap for at least this much. */
  readonly maxChunkBytes: number;

  constructor(
    private readonly maxBufferBytes: number,
    options: { reads?: ReadCap; maxChunkBytes?: number } = {},
  ) {
    this.reads = options.reads;
    this.maxChunkBytes = options.maxChunkBytes ?? 1024 * 1024;
  }

  /**
   * Output a watcher's connection may have unsent before the watcher is
   * dropped as lagging: `configured`, but never more than half the
   * connection's output budget, so a slow watcher is lagged, not disconnected.
   */
  lagLimit(connection: ConnectionHandle, configured = this.maxBufferBytes): number {
    return Math.min(configured, (connection.maxOutboundBytes ?? Number.POSITIVE_INFINITY) / 2);
  }

  countFor(connection: ConnectionHandle): number {
    return this.#byConnection.get(connection)?.size ?? 0;
  }

  get(id: string): Subscription | undefined {
    return this.#subs.get(id);
  }

  add(
    connection: ConnectionHandle,
    run: string,
    path: string,
    encoding: WatchEncoding,
    channels: { entryId: number; channel: number; after: number }[],
  ): Subscription {
    const sub: Subscription = {
      id: `sub-${this.#nextId++}`,
      connection,
      run,
      path,
      encoding,
      channels: new Map(),
      closed: false,
    };
    for (const ch of channels) {
      sub.channels.set(ch.entryId, {
        entryId: ch.entryId,
        channel: ch.channel,
        head: null,
        lastSent: ch.after,
        replaying: true,
        pending: [],
        pendingBytes: 0,
        ended: false,
        endNotice: null,
      });
      const set = this.#byEntry.get(ch.entryId) ?? new Set();
      set.add(sub);
      this.#byEntry.set(ch.entryId, set);
    }
    this.#subs.set(sub.id, sub);
    const mine = this.#byConnection.get(connection) ?? new Set();
    mine.add(sub);
    this.#byConnection.set(connection, mine);
    return sub;
  }

  remove(sub: Subscription): void {
    if (sub.closed) return;
    sub.closed = true;
    this.#subs.delete(sub.id);
    const mine = this.#byConnection.get(sub.connection);
    mine?.delete(sub);
    if (mine?.size === 0) this.#byConnection.delete(sub.connection);
    for (const watch of sub.channels.values()) this.#dropPending(sub, watch);
    for (const entryId of sub.channels.keys()) {
      const set = this.#byEntry.get(entryId);
      set?.delete(sub);
      if (set?.size === 0) this.#byEntry.delete(entryId);
    }
  }

  removeConnection(connection: ConnectionHandle): void {
    for (const sub of [...(this.#byConnection.get(connection) ?? [])]) this.remove(sub);
  }

  /** Whether anyone here watches the channel. */
  watching(entryId: number): boolean {
    return this.#byEntry.has(entryId);
  }

  /** The lowest seq a watcher of the channel has been sent (or holds, replaying): chunks after it may still be wanted. */
  floor(entryId: number): number {
    let low = Number.POSITIVE_INFINITY;
    for (const sub of this.#byEntry.get(entryId) ?? []) {
      const watch = sub.channels.get(entryId)!;
      low = Math.min(low, watch.pending.at(-1)?.seq ?? watch.lastSent);
    }
    return low === Number.POSITIVE_INFINITY ? 0 : low;
  }

  /** A chunk was committed to a channel. */
  publish(entryId: number, seq: number, data: Buffer): void {
    this.signals.touch(entryId, "data");
    // The chunk is encoded and escaped into JSON once per encoding, however many watch the channel.
    const texts = new Map<WatchEncoding, JsonStringBytes>();
    for (const sub of this.#byEntry.get(entryId) ?? []) {
      const watch = sub.channels.get(entryId)!;
      const limit = this.lagLimit(sub.connection);
      if (watch.replaying) {
        watch.pending.push({ seq, data });
        watch.pendingBytes += data.length;
        sub.connection.hold?.(data.length);
        if (watch.pendingBytes > limit) this.#lag(sub);
        continue;
      }
      if (sub.connection.bufferedAmount() > limit) {
        this.#lag(sub);
        continue;
      }
      this.sendChunk(sub, watch.entryId, seq, data, texts);
    }
  }

  /** A channel finished. */
  end(entryId: number, notice: EndNotice): void {
    this.signals.touch(entryId, "end");
    for (const sub of [...(this.#byEntry.get(entryId) ?? [])]) {
      const watch = sub.channels.get(entryId)!;
      if (watch.replaying) watch.endNotice = notice;
      else this.#sendEnd(sub, watch, notice);
    }
  }

  /**
   * Sends one chunk if it is the next one for this watcher (replay and live never duplicate). `texts` keeps the
   * chunk's JSON string per encoding for the other watchers of the same chunk.
   */
  sendChunk(sub: Subscription, entryId: number, seq: number, data: Buffer, texts?: Map<WatchEncoding, JsonStringBytes>): void {
    const watch = sub.channels.get(entryId);
    if (!watch || sub.closed || seq <= watch.lastSent) return;
    watch.lastSent = seq;
    if (sub.connection.sendSerialized) {
      // The RPC layer writes the notification as bytes (rpc/stream-data-bytes.ts): the chunk escaped once per encoding.
      const chunk = StreamDataBytes.chunkText(data, sub.encoding, texts);
      watch.head ??= new StreamDataBytes({ subscription: sub.id, run: sub.run, path: sub.path, channel: watch.channel });
      sub.connection.sendSerialized(watch.head.message(seq, chunk, sub.encoding));
      return;
    }
    sub.connection.notify("stream/data", {
      subscription: sub.id,
      run: sub.run,
      path: sub.path,
      channel: watch.channel,
      seq,
      chunk: data.toString(sub.encoding),
      encoding: sub.encoding,
    });
  }

  /** Replay reached the stored end: flush what arrived meanwhile and go live. */
  finishReplay(sub: Subscription, entryId: number, endedStatus: EndNotice | null): void {
    const watch = sub.channels.get(entryId);
    if (!watch || sub.closed) return;
    const pending = watch.pending;
    this.#dropPending(sub, watch);
    for (const chunk of pending) this.sendChunk(sub, entryId, chunk.seq, chunk.data);
    watch.replaying = false;
    const end = watch.endNotice ?? endedStatus;
    if (end) this.#sendEnd(sub, watch, end);
  }

  #sendEnd(sub: Subscription, watch: ChannelWatch, notice: EndNotice): void {
    if (watch.ended || sub.closed) return;
    watch.ended = true;
    sub.connection.notify("stream/end", {
      subscription: sub.id,
      run: sub.run,
      path: sub.path,
      channel: watch.channel,
      lastSeq: watch.lastSent,
      status: notice.status,
      ...(notice.exit_code !== undefined ? { exit_code: notice.exit_code } : {}),
    });
    if ([...sub.channels.values()].every((w) => w.ended)) this.remove(sub);
  }

  /** Lets go of the chunks held for a replaying watch (they are sent, or no longer wanted). */
  #dropPending(sub: Subscription, watch: ChannelWatch): void {
    if (watch.pendingBytes) sub.connection.hold?.(-watch.pendingBytes);
    watch.pending = [];
    watch.pendingBytes = 0;
  }

  /** Drops a watcher that cannot be served now (`stream/lagged`, with the last seq it got per channel): it may subscribe again with `after`. */
  lagged(sub: Subscription): void {
    this.#lag(sub);
  }

  #lag(sub: Subscription): void {
    if (sub.closed) return;
    const lastSeq = Object.fromEntries([...sub.channels.values()].map((w) => [String(w.channel), w.lastSent]));
    this.remove(sub);
    sub.connection.notify("stream/lagged", { subscription: sub.id, run: sub.run, path: sub.path, lastSeq });
  }
}
