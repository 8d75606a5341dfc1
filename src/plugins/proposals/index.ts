import { proposalNotice } from "../../core/lifecycle.js";
import { ProposalNotice, ResolvedNotice } from "../../core/schemas.js";
import { ENTRY } from "../../core/status.js";
import { proposalCreate } from "../../methods/proposal/create.js";
import { runResolve } from "../../methods/run/resolve.js";
import { definePlugin } from "../plugin.js";

/** Proposals: proposal/create, run/resolve, and re-sending pending proposals to connections that join. */
export const proposalsPlugin = definePlugin({
  name: "proposals",
  dependencies: ["entries"],
  setup(app) {
    app.notification({
      name: "run/proposal",
      description:
        "A proposal waits for a decision. Sent to every connection of the project, and re-sent for each pending proposal when a connection initializes.",
      direction: "server",
      params: ProposalNotice,
    });
    app.notification({
      name: "run/resolved",
      description: "A proposal was accepted or rejected (by any connection, or by run/abort), with who decided and why.",
      direction: "server",
      params: ResolvedNotice,
    });
    app.method(proposalCreate);
    app.method(runResolve);
    app.on("connection:initialized", async ({ connection, project }) => {
      // Nothing waits unseen: a client that joins late (or after a restart) sees every pending proposal.
      for (const row of await app.core.repos.entries.listProjectLogsAt(project.id, ENTRY.proposed)) {
        connection.notify("run/proposal", proposalNotice(row.alias, row));
      }
    });
  },
});
