import type { RunnerClaim } from "../../protocol/views-schemas.js";
import { SpoolError } from "../../rpc/errors.js";
import type { Producer } from "../../store/producer-row.js";
import { proposalNotice } from "../effects.js";
import { ENTRY } from "../status.js";
import type { Stage } from "./stage.js";

/*
 * With several servers on one database, a proposal records the server whose embedded runner will run it, and
 * every client shows it (`local@host:7420`). When that server stops before the decision, the proposal cannot
 * run there: a living server records its own runner in its place, raises the facts revision and announces the
 * proposal again (`run/proposal`), so the person decides on the facts that will hold. An accept for the facts
 * as they were is refused (FACTS_CHANGED), never run somewhere the person was not shown.
 */

/** Re-records, for this server's runner, the pending proposals of servers no longer alive, and announces each again. */
export async function moveProposals(stage: Stage): Promise<number> {
  const { deps, others } = stage;
  if (!others?.shared) return 0;
  const me = { id: others.serverId, label: await others.serverLabel(others.serverId) };
  const moved = await deps.repos.cluster.moveProposals(me, await deps.bus.alive(), ENTRY.proposed);
  for (const row of moved) {
    const run = await deps.repos.runs.findRunById(row.run_id);
    if (!run) continue;
    deps.log.warn(`cluster: ${run.alias} ${row.path}: its runner's server stopped before the decision; now shown with local@${me.label}`);
    deps.notifyProject(run.project_id, "run/proposal", proposalNotice(run.alias, row, deps.config.decisionTimeoutMs));
  }
  return moved.length;
}

function factsChanged(proposal: Producer, why: string): SpoolError {
  const shown = proposal.runnerServer ? `local@${proposal.runnerServer.label}` : "another runner";
  return new SpoolError("FACTS_CHANGED", `${why}: it now runs on ${shown} (facts revision ${proposal.factsRevision}); nothing ran, decide again`, {
    runnerServer: proposal.runnerServer?.label ?? null,
    factsRevision: proposal.factsRevision,
  });
}

/**
 * Refuses an accept made on facts other than the ones that hold: the accept names an older revision than the
 * proposal's, or the server recorded for its runner has stopped (then this server records its own runner in its
 * place first, announces it, and the person decides again).
 */
export async function requireFactsHold(stage: Stage, proposal: Producer, seen: number | undefined): Promise<void> {
  if (seen !== undefined && seen !== proposal.factsRevision) {
    throw factsChanged(proposal, `the facts changed since revision ${seen} was shown (its runner's server stopped)`);
  }
  const others = stage.others;
  const server = proposal.runnerServer;
  if (!others?.shared || !server || proposal.runnerClaim?.own !== true || server.id === others.serverId || (await others.alive(server.id))) return;
  await moveProposals(stage);
  const label = await others.serverLabel(others.serverId);
  throw factsChanged(
    { ...proposal, runnerServer: { id: others.serverId, label }, factsRevision: proposal.factsRevision + 1 },
    `the server whose runner was shown (local@${server.label}) stopped before the decision`,
  );
}

/** Whether two claims say the same: who vouches (the server, or which principal as which role), the modes, the network. */
function sameClaim(a: RunnerClaim, b: RunnerClaim): boolean {
  const modes = (c: RunnerClaim) => [...c.modes].sort().join(",");
  // The root too: a runner back with another --root runs the command elsewhere than the cwd shown.
  return (
    a.own === b.own &&
    a.attachedBy === b.attachedBy &&
    a.attachedAs === b.attachedAs &&
    modes(a) === modes(b) &&
    a.network === b.network &&
    (a.root ?? null) === (b.root ?? null)
  );
}

/**
 * Refuses an accept whose runner is not the one shown: the runner named (or the default recorded) now makes
 * another claim than the proposal recorded — another principal attached a runner under that name once the first
 * went, or the runner came back saying other sandbox modes or another network. With no claim recorded (the runner
 * was not attached where its facts could be read when it was proposed: a server that lists it without them), the
 * runner is held to the name's owner: one attached by another principal (an admin may attach under any name) is not
 * it. The proposal is recorded again with the claim that holds, its facts revision one higher, and announced again:
 * the person decides on it (FACTS_CHANGED, nothing ran).
 */
export async function requireClaimHolds(
  stage: Stage,
  at: { projectId: number; alias: string },
  log: { id: number },
  proposal: Producer,
  named: string,
  now: RunnerClaim,
): Promise<void> {
  // An accept naming another runner than the one recorded chose it at the decision: that claim is the one it saw.
  if (named !== (proposal.runner ?? proposal.defaultRunner)) return;
  const shown = proposal.runnerClaim;
  if (shown ? sameClaim(shown, now) : await ownersRunner(stage, at.projectId, named, now)) return;
  const { deps } = stage;
  const row = await deps.repos.cluster.reclaimProposal(log.id, now, ENTRY.proposed);
  if (!row) return;
  const run = await deps.repos.runs.findRunById(row.run_id);
  if (run) deps.notifyProject(run.project_id, "run/proposal", proposalNotice(run.alias, row, deps.config.decisionTimeoutMs));
  const who = now.own ? "the server's own runner" : `a runner attached by ${now.attachedAs ?? "?"} "${now.attachedBy ?? "?"}"`;
  throw new SpoolError(
    "FACTS_CHANGED",
    `${at.alias}'s runner ${named} is now ${who} (facts revision ${proposal.factsRevision + 1}); nothing ran, decide again`,
    {
      runnerServer: proposal.runnerServer?.label ?? null,
      factsRevision: proposal.factsRevision + 1,
    },
  );
}

/** Whether the runner under `name` now is the name's: the server's own, or attached by the principal the name belongs to. */
async function ownersRunner(stage: Stage, projectId: number, name: string, now: RunnerClaim): Promise<boolean> {
  if (now.own) return true;
  const owner = await stage.deps.repos.runnerNames.runnerNameOwner(projectId, name);
  return owner === null || owner === now.attachedBy;
}
