import { z } from "zod";
import { notFound, SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../../rpc/method.js";
import { readChunksAfter } from "../../store/chunks.js";
import { listChannels, parseAttributes } from "../../store/entries.js";
import type { App } from "../plugin.js";
import { EntryPath, RunAlias, Status } from "../schemas.js";
import { requireProducer } from "./lookup.js";
import type { Subscription, WatcherHub } from "./watchers.js";

const REPLAY_PAGE = 32;

async function drained(sub: Subscription, limit: number): Promise<boolean> {
  while (sub.connection.bufferedAmount() > limit / 2) {
    if (sub.closed || sub.connection.closed) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return !sub.closed && !sub.connection.closed;
}

/** Replays stored chunks after each channel's `after`, then hands over to live delivery. */
async function replay(app: App, hub: WatcherHub, sub: Subscription): Promise<void> {
  for (const [entryId] of sub.channels) {
    for (;;) {
      const watch = sub.channels.get(entryId)!;
      if (!(await drained(sub, app.config.limits.maxWatcherBufferBytes))) return;
      const page = await readChunksAfter(app.store.db, entryId, watch.lastSent, REPLAY_PAGE);
      for (const chunk of page) hub.sendChunk(sub, entryId, chunk.seq, chunk.data);
      if (page.length < REPLAY_PAGE) break;
    }
    // Chunks published from here on sit in the watch's pending list; finishReplay flushes them by seq, so none is lost or repeated.
    const row = await app.store.db.selectFrom("entries").select(["status", "attributes", "last_seq"]).where("id", "=", entryId).executeTakeFirstOrThrow();
    const watch = sub.channels.get(entryId)!;
    if (row.last_seq > watch.lastSent && !sub.closed) {
      // Chunks committed while we read the status: fetch them before going live.
      for (const chunk of await readChunksAfter(app.store.db, entryId, watch.lastSent, row.last_seq - watch.lastSent)) {
        hub.sendChunk(sub, entryId, chunk.seq, chunk.data);
      }
    }
    const ended = row.status === 102 ? null : { status: row.status, ...exitCode(parseAttributes(row)) };
    hub.finishReplay(sub, entryId, ended);
  }
}

function exitCode(attributes: Record<string, unknown>): { exit_code?: number | null } {
  return attributes.outcome === "completed" ? { exit_code: (attributes.exit_code as number | null) ?? null } : {};
}

export function registerSubscribeMethods(app: App, hub: WatcherHub): void {
  app.method(
    defineMethod({
      name: "stream/subscribe",
      description:
        "Watches a producer's channels (or one): replays stored chunks after `after` as `stream/data`, then pushes new ones live, then `stream/end` per channel.",
      params: z.strictObject({
        run: RunAlias,
        path: EntryPath.describe("The producer's log entry path"),
        channel: z.number().int().min(1).optional().describe("Only this channel (default: all)"),
        after: z.number().int().min(0).optional().describe("Replay chunks with seq greater than this (default 0: everything)"),
        encoding: z.enum(["utf8", "base64"]).optional().describe("How `stream/data` carries chunks: utf8 (default) or base64 for exact bytes"),
      }),
      result: z.object({
        subscription: z.string(),
        channels: z.array(z.object({ channel: z.number().int(), path: z.string(), status: Status, lastSeq: z.number().int() })),
      }),
      handler: async (params, ctx) => {
        const { run, log } = await requireProducer(app, ctx.project, params.run, params.path);
        let channels = await listChannels(app.store.db, log.id);
        if (params.channel !== undefined) channels = channels.filter((c) => c.channel === params.channel);
        if (channels.length === 0) {
          throw notFound(params.channel !== undefined ? `Channel ${params.channel} of "${params.path}"` : `Data channels of "${params.path}"`, {
            run: params.run,
            path: params.path,
          });
        }
        const max = app.config.limits.maxSubscriptionsPerConnection;
        if (hub.countFor(ctx.connection) >= max) {
          throw new SpoolError("LIMIT_EXCEEDED", `This connection already has ${max} subscriptions; unsubscribe from one first`, { limit: max });
        }
        const sub = hub.add(
          ctx.connection,
          run.alias,
          log.path,
          params.encoding ?? "utf8",
          channels.map((c) => ({ entryId: c.id, channel: c.channel!, after: params.after ?? 0 })),
        );
        // Replay starts after the reply is sent, so the client knows the subscription id first.
        setImmediate(() => {
          replay(app, hub, sub).catch((error) => {
            app.log.error(`replay of ${sub.id} failed`, error);
            hub.remove(sub);
          });
        });
        return {
          subscription: sub.id,
          channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, lastSeq: c.last_seq })),
        };
      },
    }),
  );
  app.method(
    defineMethod({
      name: "stream/unsubscribe",
      description: "Stops a subscription of this connection.",
      params: z.strictObject({ subscription: z.string().min(1) }),
      result: z.object({ unsubscribed: z.literal(true) }),
      handler: (params, ctx) => {
        const sub = hub.get(params.subscription);
        if (!sub || sub.connection !== ctx.connection) throw notFound(`Subscription "${params.subscription}"`);
        hub.remove(sub);
        return { unsubscribed: true as const };
      },
    }),
  );
}
