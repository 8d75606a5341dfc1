import type { ConnectionHandle } from "../../rpc/connection-context.js";
import { ENTRY } from "../status.js";
import { lose } from "./finish.js";
import type { Stage } from "./stage.js";

/*
 * Owners that leave: a producer whose owner's connection closed, or whose server stopped, waits the grace
 * period (runnerGraceMs) for its owner to come back (claim, runner/attach), then ends 499.
 */

/** A connection went away: the producers it owned wait the grace period for their owner, then end 499. */
export function connectionClosed(stage: Stage, connection: ConnectionHandle): void {
  const { deps } = stage;
  const owned = stage.owners.release(connection);
  const grace = deps.config.runnerGraceMs;
  const runner = stage.runners.detach(connection, owned.length > 0 ? grace : 0);
  if (runner && deps.bus.shared && !runner.embedded) {
    deps.repos.cluster
      .unplaceRunner(runner.projectId, runner.name, deps.bus.serverId)
      .catch((error: unknown) => deps.log.warn(`cluster: could not unlist runner ${runner.name}: ${String(error)}`));
  }
  if (owned.length === 0) return;
  const who = runner ? `runner ${runner.name}` : `connection ${connection.id}`;
  deps.log.warn(`${who} went away owning ${owned.length} producer(s); they have ${grace} ms for it to come back`);
  // A runner whose commands do not die with it (it said so at attach) may have left them running: its producers say so.
  const lost = runner?.container?.diesWithRunner === false ? "runner lost, may still be running" : "runner lost";
  for (const { id, kind } of owned) graceThenLose(stage, id, kind === "runner" ? lost : "owner lost");
}

/**
 * After the grace, the producer ends 499 unless its owner came back: here (a live owner), or on another
 * server sharing the database (its owner row names that server now).
 */
function graceThenLose(stage: Stage, producerId: number, reason: string): void {
  const { deps } = stage;
  stage.owners.startGrace(producerId, deps.config.runnerGraceMs, () => {
    void (async () => {
      if (deps.bus.shared && (await deps.repos.cluster.ownerServer(producerId)) !== deps.bus.serverId) return;
      await lose(stage, producerId, reason);
    })().catch((error: unknown) => deps.log.error(`could not end producer ${producerId} (${reason})`, error));
  });
}

/**
 * Producers left streaming by a server that stopped (this one before a restart, or another one sharing the
 * database) are adopted by this server, each by one server only (a lock in the database decides); they wait
 * the grace for their owner to claim them, then end 499 with `reason`.
 */
export async function adoptOrphans(stage: Stage, reason: string): Promise<void> {
  const { deps } = stage;
  const bus = deps.bus;
  const orphans = bus.shared
    ? await deps.repos.cluster.adoptOrphans(bus.serverId, await bus.alive(), ENTRY.streaming)
    : await deps.repos.entries.listProducersWithChannelsAt(ENTRY.streaming);
  if (orphans.length === 0) return;
  deps.log.info(`${orphans.length} producer(s) were streaming when their server stopped; they have ${deps.config.runnerGraceMs} ms to resume`);
  for (const id of orphans) graceThenLose(stage, id, reason);
}
