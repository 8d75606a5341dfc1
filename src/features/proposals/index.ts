import { definePlugin } from "../../plugins/plugin.js";
import { notifications } from "../../protocol/notifications.js";
import { proposalCreate } from "./create.js";
import { proposalList } from "./list.js";
import { resendPendingProposals } from "./resend.js";
import { runResolve } from "./resolve.js";

/** Proposals: proposal/create, proposal/list, run/resolve, and re-sending pending proposals to connections that join. */
export const proposalsPlugin = definePlugin({
  name: "proposals",
  dependencies: ["entries"],
  setup(app) {
    app.notification(notifications["run/proposal"]);
    app.notification(notifications["run/resolved"]);
    app.method(proposalCreate);
    app.method(proposalList);
    app.method(runResolve);
    // The other hooks do not wait for it.
    app.on("connection:initialized", ({ connection, project }) => {
      resendPendingProposals(app.core, connection, project).catch((error: unknown) =>
        app.log.error(`re-sending pending proposals to connection ${connection.id} failed`, error),
      );
    });
  },
});
