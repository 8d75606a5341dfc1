import { z } from "zod";
import { listPendingProposals } from "../../store/entries.js";
import { definePlugin } from "../plugin.js";
import { PRODUCERS_SERVICE, ProducerRegistry } from "./producer.js";
import { proposalCreateMethod } from "./proposal-create.js";
import { proposalNotice, ProposalNotice } from "./proposal-view.js";
import { ResolvedChannel, runResolveMethod, selfOnly, type RunnerDispatch } from "./run-resolve.js";

export const RUNNER_SELECTOR_SERVICE = "runner-selector";

/** Holds the runner dispatch so a runner plugin can install the real one during its setup. */
export class RunnerSelectorSlot {
  current: RunnerDispatch = selfOnly;
}

/** Proposals: the producer registry, proposal/create, run/resolve, and re-sending pending proposals. */
export const proposalsPlugin = definePlugin({
  name: "proposals",
  dependencies: ["entries"],
  setup(app) {
    const registry = new ProducerRegistry();
    const selector = new RunnerSelectorSlot();
    app.provide(PRODUCERS_SERVICE, registry);
    app.provide(RUNNER_SELECTOR_SERVICE, selector);
    app.notification({
      name: "run/proposal",
      description: "A proposal waits for a decision. Sent to every connection of the project, and re-sent for each pending proposal when a connection initializes.",
      direction: "server",
      params: ProposalNotice,
    });
    app.notification({
      name: "run/resolved",
      description: "A proposal was accepted or rejected (by any connection).",
      direction: "server",
      params: z.object({
        run: z.string(),
        path: z.string(),
        decision: z.enum(["accept", "reject"]),
        status: z.number().int(),
        runner: z.string().nullable(),
        channels: z.array(ResolvedChannel),
      }),
    });
    app.method(proposalCreateMethod(app, registry));
    app.method(runResolveMethod(app, registry, () => selector.current));
    app.on("connection:initialized", async ({ connection, project }) => {
      // Nothing waits unseen: a client that joins late (or after a restart) sees every pending proposal.
      for (const row of await listPendingProposals(app.store.db, project.id)) {
        connection.notify("run/proposal", proposalNotice(row.alias, row));
      }
    });
  },
});
