import { definePlugin } from "../../plugins/plugin.js";
import { notifications } from "../../protocol/notifications.js";
import { streamAborted } from "./aborted.js";
import { streamCancel } from "./cancel.js";
import { streamClaim } from "./claim.js";
import { streamCompleted } from "./completed.js";
import { streamEof } from "./eof.js";
import { streamInput } from "./input.js";
import { streamResize } from "./resize.js";
import { streamSignal } from "./signal.js";
import { stream } from "./stream.js";
import { streamSubscribe } from "./subscribe.js";
import { streamUnsubscribe } from "./unsubscribe.js";

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
