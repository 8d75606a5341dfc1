import { definePlugin } from "../plugin.js";
import { discoverMethod } from "./discover.js";
import { initializeMethod } from "./initialize.js";
import { ping } from "./ping.js";

/** Connection basics: ping, initialize (project binding) and discovery. */
export const sessionPlugin = definePlugin({
  name: "session",
  setup(app) {
    app.method(ping);
    app.method(
      initializeMethod({
        db: app.store.db,
        defaultRoot: app.config.defaultRoot,
        joined: (connection, project) => app.emit("connection:initialized", { connection, project }),
      }),
    );
    app.method(discoverMethod(app));
  },
});
