import { z } from "zod";
import { definePlugin } from "../plugin.js";
import { finishProducerById, finishStream } from "./finish.js";
import { RestartReaper } from "./reaper.js";
import { registerFinishMethods, streamMethod } from "./stream-methods.js";
import { registerSubscribeMethods } from "./subscribe.js";
import { WatcherHub } from "./watchers.js";

export const STREAMS_SERVICE = "streams";

/** Fields every per-channel watcher notification carries. */
const WatchedChannel = z.object({ subscription: z.string(), run: z.string(), path: z.string(), channel: z.number().int() });

/** What other plugins (runners, the agent loop) use to finish producers and watch channels. */
export interface StreamsService {
  hub: WatcherHub;
  finish: typeof finishStream;
  finishById: typeof finishProducerById;
  touched(producerId: number): void;
}

/** The four stream RPCs, watching, and the restart reaper. */
export const streamPlugin = definePlugin({
  name: "stream",
  dependencies: ["proposals"],
  setup(app) {
    const hub = new WatcherHub(app.config.limits.maxWatcherBufferBytes);
    const reaper = new RestartReaper(app, hub);
    app.provide<StreamsService>(STREAMS_SERVICE, { hub, finish: finishStream, finishById: finishProducerById, touched: (id) => reaper.touched(id) });
    app.method(streamMethod(app, hub, reaper));
    registerFinishMethods(app, hub);
    registerSubscribeMethods(app, hub);
    app.notification({
      name: "stream/cancelled",
      description: "A client cancelled a producer; its runner must kill the work. Sent to every connection of the project.",
      direction: "server",
      params: z.object({ run: z.string(), path: z.string(), reason: z.string() }),
    });
    app.notification({
      name: "stream/data",
      description: "A chunk of a watched channel, in seq order, replayed or live.",
      direction: "server",
      params: WatchedChannel.extend({
        seq: z.number().int(),
        chunk: z.string(),
        encoding: z.enum(["utf8", "base64"]),
      }),
    });
    app.notification({
      name: "stream/end",
      description: "A watched channel finished; `lastSeq` is the last chunk sent. The subscription ends with its last channel.",
      direction: "server",
      params: WatchedChannel.extend({
        lastSeq: z.number().int(),
        status: z.number().int(),
        exit_code: z.number().int().nullable().optional(),
      }),
    });
    app.notification({
      name: "stream/lagged",
      description: "The watcher fell too far behind and was dropped; resubscribe with `after` = `lastSeq[channel]`.",
      direction: "server",
      params: z.object({ subscription: z.string(), run: z.string(), path: z.string(), lastSeq: z.record(z.string(), z.number().int()) }),
    });
    app.on("connection:closed", ({ connection }) => hub.removeConnection(connection));
    app.on("server:started", () => reaper.start());
    app.on("server:stopping", () => reaper.stop());
  },
});
