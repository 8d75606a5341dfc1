import type { PrincipalRef } from "../../protocol/roles.js";
import { roleAllows } from "../../protocol/roles.js";
import type { RunnerState } from "../../protocol/runner.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { notFound, SpoolError } from "../../rpc/errors.js";
import { ENTRY } from "../status.js";
import type { Stage } from "./stage.js";

/*
 * Drain (SPEC §7 "Pools"): a drained runner takes nothing new — no accept sends it a command, no take gives it a
 * queued one — while the commands it runs finish. The drain is held with its name in the database, so it outlives the
 * runner's reconnects (to any server); the server the runner is attached to applies it at once (told by the bus).
 */

/**
 * Drains the runner `name` of the project (or, `draining` false, lets it claim again), by `caller`: a person or an
 * admin any runner, another credential (a runner's) only those its principal attached (NOT_OWNER otherwise). What it runs now, and its state after.
 */
export async function drain(
  stage: Stage,
  project: ProjectRef,
  name: string,
  draining: boolean,
  caller: PrincipalRef,
): Promise<{ name: string; state: RunnerState; running: number }> {
  const { deps, runners } = stage;
  if (name === runners.embeddedName) {
    throw new SpoolError(
      "UNSUPPORTED",
      `"${name}" is the server's embedded runner: it takes what this server gives it and is not drained; stop the server to upgrade it, or start it with --no-local-runner`,
      { name },
    );
  }
  const names = await deps.repos.runnerNames.listRunnerNames(project.id);
  const owned = names.find((n) => n.name === name);
  if (!owned) throw notFound(`Runner "${name}"`, { name, runners: names.map((n) => n.name) });
  // Below person, a credential drains only the runners its principal attached (their names are its): a runner's preStop hook.
  if (!roleAllows(caller.role, "person") && owned.principal !== caller.name) {
    throw new SpoolError(
      "NOT_OWNER",
      `Runner "${name}" belongs to principal "${owned.principal}"; this credential ("${caller.name}", ${caller.role}) drains only the runners it attached, a person or an admin any`,
      { name, principal: owned.principal, method: "runner/drain" },
    );
  }
  await deps.repos.runnerNames.setDraining(project.id, name, draining);
  const local = runners.get(project.id, name) ?? runners.held(project.id).find((h) => h.runner.name === name)?.runner;
  if (local) {
    local.draining = draining;
    if (!draining) stage.claims.wake(local);
  } else stage.others?.drainElsewhere(project.id, name, draining);
  deps.log.info(`runner ${name} of project ${project.name}: ${draining ? "draining (takes nothing new)" : "claiming again"}, by ${caller.name}`);
  const gone = local !== undefined && runners.get(project.id, name) !== local;
  const running = local && !gone ? stage.claims.load(local) : (await deps.repos.producers.listRunnerProducers(project.id, name, ENTRY.streaming)).length;
  return { name, state: gone ? "gone" : draining ? "draining" : "claiming", running };
}

/** Another server drained a runner attached here (or let it claim again): applied at once. */
export function drainedElsewhere(stage: Stage, projectId: number, name: string, draining: boolean): void {
  const runner = stage.runners.get(projectId, name) ?? stage.runners.held(projectId).find((h) => h.runner.name === name)?.runner;
  if (!runner) return;
  runner.draining = draining;
  if (!draining) stage.claims.wake(runner);
}
