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
import { notifications } from "../../protocol/notifications.js";
import { definePlugin } from "../plugin.js";

/** The four stream RPCs of the mission, claims, and watching. The lifecycle itself is the core's. */
export const streamPlugin = definePlugin({
  name: "stream",
  dependencies: ["proposals"],
  setup(app) {
    app.notification(notifications["stream/started"]);
    app.notification(notifications["stream/cancelled"]);
    app.notification(notifications["stream/finished"]);
    app.notification(notifications["stream/data"]);
    app.notification(notifications["stream/end"]);
    app.notification(notifications["stream/lagged"]);
    app.notification(notifications["producer/input"]);
    app.notification(notifications["producer/eof"]);
    app.notification(notifications["producer/signal"]);
    app.notification(notifications["producer/resize"]);
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
    app.on("connection:closed", ({ connection }) => app.core.watchers.removeConnection(connection));
  },
});
