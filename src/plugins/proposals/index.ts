import { proposalNotice } from "../../core/lifecycle.js";
import { ENTRY } from "../../core/status.js";
import { proposalCreate } from "../../methods/proposal/create.js";
import { proposalList } from "../../methods/proposal/list.js";
import { runResolve } from "../../methods/run/resolve.js";
import { notifications } from "../../protocol/notifications.js";
import { definePlugin } from "../plugin.js";

/** Pending proposals re-sent per page on `initialize` (a proposal's notice is at most about 130 KiB: its command twice). */
const RESEND_PAGE = 8;

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
    app.on("connection:initialized", ({ connection, project }) => {
      // Nothing waits unseen: a client that joins late (or after a restart) sees every pending proposal.
      // A page at a time, each as work scheduled on the connection: it waits until the client has read the
      // page before (so one that does not read holds one page, not the project's whole list) and takes its
      // fair share of the event loop. The other hooks do not wait for it.
      const resend = async () => {
        let afterId = 0;
        const page = async () => {
          const rows = await app.core.repos.entries.listProjectLogsAt(project.id, ENTRY.proposed, { afterId, limit: RESEND_PAGE });
          for (const row of rows) connection.notify("run/proposal", proposalNotice(row.alias, row));
          afterId = rows.at(-1)?.id ?? afterId;
          return rows.length === RESEND_PAGE;
        };
        let more = true;
        while (more && !connection.closed) more = (await (connection.schedule ? connection.schedule("run/proposal resend", page) : page())) === true;
      };
      resend().catch((error: unknown) => app.log.error(`re-sending pending proposals to connection ${connection.id} failed`, error));
    });
  },
});
