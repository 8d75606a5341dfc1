import type { Core } from "../../core/index.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";

/** Pending proposals re-sent per page on `initialize` (a proposal's notice is at most about 130 KiB: its command twice). */
export const RESEND_PAGE = 8;

/**
 * Nothing waits unseen: a client that joins late (or after a restart) gets `run/proposal` for every pending
 * proposal of its project. A page at a time, each as work scheduled on the connection: it waits until the
 * client has read the page before (so one that does not read holds one page, not the project's whole list)
 * and takes its fair share of the event loop. Stops when the connection closes.
 */
export async function resendPendingProposals(core: Core, connection: ConnectionHandle, project: ProjectRef): Promise<void> {
  // A runner's credential reads nothing of the project (src/protocol/roles.ts RUNNER_NOTIFICATIONS).
  if (connection.principal.role === "runner") return;
  let afterId = 0;
  const page = async () => {
    const rows = await core.proposals.pending(project, { afterId, limit: RESEND_PAGE });
    for (const row of rows) connection.notify("run/proposal", row.notice);
    afterId = rows.at(-1)?.id ?? afterId;
    return rows.length === RESEND_PAGE;
  };
  let more = true;
  while (more && !connection.closed) more = (await (connection.schedule ? connection.schedule("run/proposal resend", page) : page())) === true;
}
