import { z } from "zod";
import { CancelledNotice, FinishedNotice, StartedNotice } from "../../core/schemas.js";
import { streamAborted } from "../../methods/stream/aborted.js";
import { streamCancel } from "../../methods/stream/cancel.js";
import { streamClaim } from "../../methods/stream/claim.js";
import { streamCompleted } from "../../methods/stream/completed.js";
import { streamEof } from "../../methods/stream/eof.js";
import { streamInput } from "../../methods/stream/input.js";
import { streamResize } from "../../methods/stream/resize.js";
import { streamSignal } from "../../methods/stream/signal.js";
import { stream } from "../../methods/stream/stream.js";
import { streamSubscribe } from "../../methods/stream/subscribe.js";
import { streamUnsubscribe } from "../../methods/stream/unsubscribe.js";
import { PRODUCER_CONTROLS } from "../../runners/protocol.js";
import { definePlugin } from "../plugin.js";

/** Fields every per-channel watcher notification carries. */
const WatchedChannel = z.object({ subscription: z.string(), run: z.string(), path: z.string(), channel: z.number().int() });

/** The four stream RPCs of the mission, claims, and watching. The lifecycle itself is the core's. */
export const streamPlugin = definePlugin({
  name: "stream",
  dependencies: ["proposals"],
  setup(app) {
    app.method(stream);
    app.method(streamCompleted);
    app.method(streamAborted);
    app.method(streamCancel);
    app.method(streamClaim);
    app.method(streamSubscribe);
    app.method(streamUnsubscribe);
    app.method(streamInput);
    app.method(streamEof);
    app.method(streamSignal);
    app.method(streamResize);
    for (const request of PRODUCER_CONTROLS) app.notification({ ...request, direction: "server" });
    app.notification({
      name: "stream/started",
      description: "An accepted producer's owner began running it; `process` says where. Sent to every connection of the project.",
      direction: "server",
      params: StartedNotice,
    });
    app.notification({
      name: "stream/cancelled",
      description: "A client cancelled a producer; its owner must kill the work. Sent to every connection of the project.",
      direction: "server",
      params: CancelledNotice,
    });
    app.notification({
      name: "stream/finished",
      description: "A producer ended: completed, aborted (also when its owner was lost), or cancelled. Sent to every connection of the project.",
      direction: "server",
      params: FinishedNotice,
    });
    app.notification({
      name: "stream/data",
      description: "A chunk of a watched channel, in seq order, replayed or live.",
      direction: "server",
      params: WatchedChannel.extend({ seq: z.number().int(), chunk: z.string(), encoding: z.enum(["utf8", "base64"]) }),
    });
    app.notification({
      name: "stream/end",
      description: "A watched channel finished; `lastSeq` is the last chunk sent. The subscription ends with its last channel.",
      direction: "server",
      params: WatchedChannel.extend({ lastSeq: z.number().int(), status: z.number().int(), exit_code: z.number().int().nullable().optional() }),
    });
    app.notification({
      name: "stream/lagged",
      description: "The watcher fell too far behind and was dropped; resubscribe with `after` = `lastSeq[channel]`.",
      direction: "server",
      params: z.object({ subscription: z.string(), run: z.string(), path: z.string(), lastSeq: z.record(z.string(), z.number().int()) }),
    });
    app.on("connection:closed", ({ connection }) => app.core.watchers.removeConnection(connection));
  },
});
