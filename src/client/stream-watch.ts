// biome-ignore-all lint/suspicious/noExplicitAny: stream notifications arrive as parsed JSON, read field by field as the original client did
import type { MethodName, ParamsOf, ResultOf } from "../protocol/methods/index.js";
import { ENTRY } from "../protocol/status.js";

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
  readonly ended: Promise<Map<number, { status: number; exit_code?: number | null }>>;
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
  const lastSeq = new Map<number, number>();
  const endings = new Map<number, { status: number; exit_code?: number | null }>();
  const ids = new Set<string>();
  let channels: number[] = [];
  let resolveEnded!: (value: Map<number, { status: number; exit_code?: number | null }>) => void;
  const ended = new Promise<Map<number, { status: number; exit_code?: number | null }>>((r) => (resolveEnded = r));
  // Notifications for a subscription whose id is not known yet: kept only while a subscribe is in flight (they
  // may come in the same read as its reply); others are another watch's, and are not this one's to keep.
  const early: any[] = [];
  let subscribing = 0;
  const keep = (p: any) => void (subscribing > 0 && early.push(p));
  const deliver = (p: any) => {
    if (!ids.has(p.subscription)) return keep(p);
    if (p.seq <= (lastSeq.get(p.channel) ?? 0)) return;
    lastSeq.set(p.channel, p.seq);
    onData({ channel: p.channel, seq: p.seq, data: Buffer.from(p.chunk, p.encoding), replayed: p.seq <= (storedAt.get(p.channel) ?? 0) });
    if (stored.has(p.channel) && p.seq >= stored.get(p.channel)!) {
      stored.delete(p.channel);
      if (!endings.has(p.channel)) endings.set(p.channel, { status: ENTRY.streaming });
      settleWhenDone();
    }
  };
  /** Per channel, the last seq stored when it was last subscribed: chunks up to it are replayed. */
  const storedAt = new Map<number, number>();
  /** With `snapshot`: per channel, the seq stored when it subscribed, until it is delivered. */
  const stored = new Map<number, number>();
  const settleWhenDone = () => {
    if (channels.length && channels.every((c) => endings.has(c))) resolveEnded(endings);
  };
  const finish = (p: any) => {
    if (!ids.has(p.subscription)) return keep({ ...p, end: true });
    endings.set(p.channel, { status: p.status, ...(p.exit_code !== undefined ? { exit_code: p.exit_code } : {}) });
    stored.delete(p.channel);
    settleWhenDone();
  };
  // Dropped by the server as too slow: its channels again, each from the last chunk that arrived.
  const lagged = (p: any) => {
    if (!ids.delete(p.subscription)) return keep({ ...p, lagged: true });
    for (const c of Object.keys(p.lastSeq).map(Number)) if (!endings.has(c)) void subscribe(c, lastSeq.get(c) ?? 0).catch(() => undefined);
  };
  const offData = client.on("stream/data", deliver);
  const offEnd = client.on("stream/end", finish);
  const offLag = client.on("stream/lagged", lagged);
  const subscribe = async (channel: number | undefined, after: number) => {
    subscribing++;
    let reply: ResultOf<"stream/subscribe">;
    try {
      reply = await client.call("stream/subscribe", {
        run: target.run,
        path: target.path,
        ...(channel !== undefined ? { channel } : {}),
        after,
        encoding: "base64",
      });
    } finally {
      subscribing--;
    }
    ids.add(reply.subscription);
    for (const c of reply.channels) storedAt.set(c.channel, c.lastSeq);
    // Notifications can arrive in the same read as the reply, before the id is known.
    const waiting = early.splice(0);
    for (const p of waiting) (p.end ? finish : p.lagged ? lagged : deliver)(p);
    return reply;
  };
  const first = await subscribe(target.channel, target.after ?? 0);
  channels = first.channels.map((c) => c.channel);
  const storedAtStart = new Map(first.channels.map((c) => [c.channel, c.lastSeq] as const));
  if (target.snapshot) {
    for (const c of first.channels) {
      if (endings.has(c.channel)) continue;
      if (c.lastSeq <= Math.max(target.after ?? 0, lastSeq.get(c.channel) ?? 0)) endings.set(c.channel, { status: c.status });
      else stored.set(c.channel, c.lastSeq);
    }
  }
  for (const c of channels) if (!lastSeq.has(c)) lastSeq.set(c, target.after ?? 0);
  if (channels.every((c) => endings.has(c))) resolveEnded(endings);
  const watch = {
    resubscribe: async () => {
      ids.clear();
      // One subscription per unfinished channel, each from its own last seq.
      for (const c of channels.filter((c) => !endings.has(c))) await subscribe(c, lastSeq.get(c) ?? 0);
    },
  };
  watches.add(watch);
  void ended.then(() => watches.delete(watch));
  return {
    lastSeq,
    stored: storedAtStart,
    ended,
    close: async () => {
      watches.delete(watch);
      offData();
      offEnd();
      offLag();
      for (const id of ids) await client.call("stream/unsubscribe", { subscription: id }).catch(() => undefined);
    },
  };
}
