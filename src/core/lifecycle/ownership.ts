import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import { producerFromRow } from "../../store/producer-row.js";
import type { ClaimResult, ProducerTarget } from "../deps.js";
import { tokenMatches } from "../producers/resume-tokens.js";
import { notOwner } from "../refusals.js";
import { ENTRY } from "../status.js";
import { follow, METHOD, producerState, requireLog, type Stage } from "./stage.js";

/*
 * Who owns a producer: set when it is accepted (decide.ts) or claimed back with its resume token, dropped when
 * it finishes or a connection of another server sharing the database owns it.
 */

/** Makes `connection` the producer's owner; with servers sharing the database, the row says it is on this one. */
export async function own(stage: Stage, producerId: number, connection: ConnectionHandle, kind: "runner" | "self"): Promise<void> {
  const { deps } = stage;
  stage.owners.set(producerId, connection, kind);
  if (!deps.bus.shared) return;
  await deps.repos.cluster.setOwner(producerId, deps.bus.serverId);
  deps.bus.publish({ t: "owned", producer: producerId, server: deps.bus.serverId });
}

/**
 * Nobody here owns the producer any more (it finished, or is owned elsewhere): its owner, grace and append targets go.
 * A runner that owned it has a slot free: it looks at its queues.
 */
export function forget(stage: Stage, producerId: number): void {
  const owner = stage.owners.ownerOf(producerId);
  stage.owners.forget(producerId);
  stage.forgetTargets(producerId);
  const runner = owner?.kind === "runner" ? stage.runners.runnerOf(owner.connection) : undefined;
  if (runner) stage.claims.wake(runner);
}

/** A connection shows a producer's resume token and becomes its owner (after a reconnect or a restart). */
export async function claim(stage: Stage, caller: ConnectionHandle, project: ProjectRef, target: ProducerTarget, token: string): Promise<ClaimResult> {
  const { log } = await requireLog(stage.deps.repos, project, target.run, target.path);
  const { state, channels } = await producerState(stage.deps.repos, log);
  const holder = log.status === ENTRY.done && tokenMatches(token, producerFromRow(log).ownerKey);
  follow(state, "claim", holder ? "owner" : "other", () => notOwner(target.path, METHOD.claim!));
  const open = state === "streaming";
  if (open) await own(stage, log.id, caller, stage.runners.runnerOf(caller) ? "runner" : "self");
  return {
    path: log.path,
    status: open ? ENTRY.streaming : (channels[0]?.status ?? log.status),
    channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, lastSeq: c.last_seq })),
  };
}
