import { z } from "zod";
import { replay } from "../../core/replay.js";
import { EntryPath, RunAlias, Status } from "../../core/schemas.js";
import { notFound, SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../define.js";

export const streamSubscribe = defineMethod({
  name: "stream/subscribe",
  description:
    "Watches a producer's channels (or one): replays stored chunks after `after` as `stream/data`, then pushes new ones live, then `stream/end` per channel.",
  params: z.strictObject({
    run: RunAlias,
    path: EntryPath.describe("The producer's log entry path"),
    channel: z.number().int().min(0).optional().describe("Only this channel (default: all); 0 is the input clients sent, once there is some"),
    after: z.number().int().min(0).optional().describe("Replay chunks with seq greater than this (default 0: everything)"),
    encoding: z.enum(["utf8", "base64"]).optional().describe("How `stream/data` carries chunks: utf8 (default) or base64 for exact bytes"),
  }),
  result: z.object({
    subscription: z.string(),
    channels: z.array(
      z.object({
        channel: z.number().int(),
        path: z.string(),
        status: Status,
        lastSeq: z.number().int(),
        bytes: z.number().int().describe("Bytes the channel held up to lastSeq (read together with it)"),
      }),
    ),
  }),
  handler: async (params, ctx) => {
    const { core } = ctx;
    const { run, log } = await core.lifecycle.requireLog(ctx.project, params.run, params.path);
    let channels = await core.repos.entries.listChannels(log.id);
    if (params.channel !== undefined) channels = channels.filter((c) => c.channel === params.channel);
    if (channels.length === 0) {
      throw notFound(params.channel !== undefined ? `Channel ${params.channel} of "${params.path}"` : `Data channels of "${params.path}"`, {
        run: params.run,
        path: params.path,
      });
    }
    const hub = core.watchers;
    const max = core.config.limits.maxSubscriptionsPerConnection;
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
      replay(core.repos, hub, sub, core.config.limits.maxWatcherBufferBytes).catch(() => hub.remove(sub));
    });
    return {
      subscription: sub.id,
      channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, lastSeq: c.last_seq, bytes: c.bytes })),
    };
  },
});
