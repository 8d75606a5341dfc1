import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { notFound, SpoolError } from "../../rpc/errors.js";

export const streamSubscribe = defineMethod({
  ...methods["stream/subscribe"],
  handler: async (params, ctx) => {
    const { core } = ctx;
    const { run, log } = await core.lifecycle.requireLog(ctx.project, params.run, params.path);
    let channels = await core.entries.channels(log.id);
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
      core.entries.replay(sub).catch(() => hub.remove(sub));
    });
    return {
      subscription: sub.id,
      channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, lastSeq: c.last_seq, bytes: c.bytes })),
    };
  },
});
