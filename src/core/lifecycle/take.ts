import { SpoolError } from "../../rpc/errors.js";
import { producerFromRow } from "../../store/producer-row.js";
import type { EntryRow } from "../../store/schema.js";
import { admitsOf, admitted, serves } from "../runners/pools.js";
import type { AttachedRunner } from "../runners/registry.js";
import { ENTRY } from "../status.js";
import { dispatchTo } from "./decide.js";
import { own } from "./ownership.js";
import { follow, producerState, type Stage } from "./stage.js";

/*
 * take: a free runner takes a queued command (SPEC §7 "Pools"). The command waits in its pool's queue (the
 * runner_queue table, in the order it was accepted); a runner with room takes the oldest one it may — its queue is
 * one it serves, and the command admits it (the principals, backends, mode and network it was accepted for) — under
 * the database's lock for the project's queue, and only while its channels are still queued: one take wins,
 * whichever server asks. The runner owns it from then on, and is sent runner/exec; a runner lost before it starts the
 * command gets it reported lost, never run again.
 */

/**
 * The runner takes the oldest queued command of its project it may (or `only`, that one), and it is dispatched to it;
 * false when there was none to take. The caller has checked the runner has room.
 */
export async function take(stage: Stage, runner: AttachedRunner, only?: EntryRow): Promise<boolean> {
  const { deps } = stage;
  const project = runner.project;
  let keys: string[];
  if (only) {
    // The table says what a take does from the command's state (a command that is not queued is CONFLICT).
    const { state } = await producerState(deps.repos, (await deps.repos.entries.findEntryById(only.id)) ?? only);
    follow(state, "take", "owner", (error) => new SpoolError(error, `"${only.path}" waits in no queue (${state})`));
    const row = await deps.repos.queue.findQueued(only.id);
    keys = row && serves(stage.deps.config, runner, row.pool) ? [row.pool] : [];
  } else keys = (await deps.repos.queue.queueKeys(project.id)).filter((key) => serves(stage.deps.config, runner, key));
  if (keys.length === 0) return false;
  const others = stage.others;
  const here = others?.shared ? { id: others.serverId, label: await others.serverLabel(others.serverId) } : null;
  runner.reserved++;
  let taken: Awaited<ReturnType<typeof deps.repos.queue.takeQueued>>;
  try {
    taken = await deps.repos.queue.takeQueued(
      project.id,
      keys,
      (text) => {
        const admits = admitsOf(text);
        return admits !== null && admitted(runner, admits);
      },
      {
        open: ENTRY.queued,
        to: ENTRY.streaming,
        set: { runner: runner.name, ownerKey: runner.tokenKey, takenAt: Date.now(), ...(here ? { runnerServer: here } : {}) },
        ...(only ? { producerId: only.id } : {}),
      },
    );
    if (!taken) return false;
    await own(stage, taken.log.id, runner.connection, "runner");
  } finally {
    runner.reserved--;
  }
  const run = await deps.repos.runs.findRunById(taken.log.run_id);
  if (!run) return true;
  for (const channel of taken.channels) await stage.effects.hookStatus(project, run, channel, ENTRY.queued);
  const tool = stage.producers.get(producerFromRow(taken.log).tool);
  const channels = taken.channels.map((c) => ({ channel: c.channel!, name: tool?.channels[c.channel!] ?? `channel ${c.channel}`, path: c.path }));
  dispatchTo(stage, project, run, taken.log, runner, channels);
  return true;
}
