import type { z } from "zod";
import { roleAllows } from "../../protocol/roles.js";
import type { RunnerAttachParams, RunnerAttachResult } from "../../protocol/runner.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import { conflict, SpoolError } from "../../rpc/errors.js";
import { producerFromRow } from "../../store/producer-row.js";
import type { EntryRow } from "../../store/schema.js";
import type { CoreDeps } from "../deps.js";
import type { Owners } from "../producers/owners.js";
import { tokenMatches } from "../producers/resume-tokens.js";
import { notOwner } from "../refusals.js";
import { ENTRY } from "../status.js";
import type { OtherServers } from "./dispatch.js";
import { locationInfo } from "./pools.js";
import type { AttachedRunner, RunnerRegistry } from "./registry.js";

/** What attaching a runner needs of the lifecycle around it. */
export interface AttachContext {
  deps: CoreDeps;
  runners: RunnerRegistry;
  owners: Owners;
  others: OtherServers | null;
  /** Makes `connection` the producer's owner (here, and in the database when it is shared). */
  own(producerId: number, connection: ConnectionHandle, kind: "runner"): Promise<void>;
  /** The runner is attached and has its producers back: it looks at its pools' queues. */
  attached(runner: AttachedRunner): void;
}

/**
 * `runner/attach`: checks the name, the default and, for a re-attach, that every producer it resumes was
 * dispatched to a runner holding the same resume token; only then attaches and takes them back. Any
 * failure changes nothing.
 */
export async function attachRunner(
  ctx: AttachContext,
  connection: ConnectionHandle,
  project: ProjectRef,
  params: z.output<typeof RunnerAttachParams>,
): Promise<z.input<typeof RunnerAttachResult>> {
  const { deps, runners, owners, others } = ctx;
  const repos = deps.repos;
  refuseRunnerDefault(connection, params);
  runners.check(connection, project, params);
  const claims: { ref: { run: string; path: string }; log: EntryRow | null; channels: EntryRow[] }[] = [];
  for (const ref of params.resume ?? []) {
    const run = await repos.runs.findRun(project.id, ref.run);
    const log = (run && (await repos.entries.findEntry(run.id, ref.path))) ?? null;
    if (log?.scheme !== "log") {
      claims.push({ ref, log: null, channels: [] });
      continue;
    }
    const producer = producerFromRow(log);
    if (producer.runner !== params.name || !tokenMatches(params.resumeToken, producer.ownerKey)) throw notOwner(ref.path, "runner/attach resume");
    claims.push({ ref, log, channels: await repos.entries.listChannels(log.id) });
  }
  await refuseSquatting(deps, runners, connection, project, params.name);
  // One name (and one default) per project across the servers sharing the database.
  const listed = others?.shared && params.name !== runners.embeddedName;
  if (listed) {
    const there = await others!.runnerServer(project.id, params.name);
    if (there !== null)
      throw conflict(`A runner named "${params.name}" is attached to another server of this database (server ${there})`, { name: params.name });
    const defaultThere = params.default ? await others!.runnerServer(project.id, null) : null;
    if (defaultThere !== null) {
      throw conflict(`Project "${project.name}" has a default runner on another server of this database (server ${defaultThere}); attach without default`, {
        name: params.name,
      });
    }
  }
  // Drained (spool runners drain) before a reconnect, to this server or another: still draining. A fresh start under
  // the name (no resume token: a new process, an upgraded one) claims again.
  const embedded = params.name === runners.embeddedName;
  const drained = embedded ? false : params.resumeToken ? await repos.runnerNames.isDraining(project.id, params.name) : null;
  const { runner, token, replaced } = runners.attach(connection, project, params);
  if (drained !== null) runner.draining ||= drained;
  else await repos.runnerNames.setDraining(project.id, params.name, false);
  if (listed) await repos.cluster.placeRunner(project.id, runner.name, deps.bus.serverId, runner.default, locationInfo(runner));
  if (replaced && replaced.connection !== connection) {
    // The same runner came back on a new connection before the old one was noticed dead.
    for (const { id } of owners.release(replaced.connection)) owners.set(id, connection, "runner");
    replaced.connection.close(4001, "replaced by a new attach of the same runner");
  }
  const resumed: z.input<typeof RunnerAttachResult>["resumed"] = [];
  const finished: z.input<typeof RunnerAttachResult>["finished"] = [];
  for (const { ref, log, channels } of claims) {
    if (!log) finished.push({ ...ref, status: 404 });
    else if (channels.some((c) => c.status === ENTRY.streaming)) {
      await ctx.own(log.id, connection, "runner");
      resumed.push({ ...ref, lastSeq: Object.fromEntries(channels.map((c) => [String(c.channel), c.last_seq])) });
    } else finished.push({ ...ref, status: channels[0]?.status ?? log.status });
  }
  deps.log.info(
    `runner ${runner.name} (${runner.backend}${runner.capacity === null ? "" : `, ${runner.capacity} at once`}) attached to project ${project.name}; resumed ${resumed.length}${runner.draining ? "; draining" : ""}`,
  );
  // Commands may wait in its pools' queues (queued while it was away, or before a restart).
  ctx.attached(runner);
  return {
    name: runner.name,
    project: project.name,
    resumed,
    finished,
    maxUnackedChunks: deps.config.limits.maxUnackedChunks,
    resumeToken: token,
    default: runner.default,
    runnerGraceMs: deps.config.runnerGraceMs,
  };
}

/**
 * A runner name belongs to the principal that first attached a runner under it in the project (issue 54): another
 * credential (below admin) attaching under it is CONFLICT, even once the first runner has left — else any runner
 * credential could stand in for `dock` after it went, shown exactly like it, and receive what a person sends there.
 * The embedded runner's name is the server's own.
 */
async function refuseSquatting(deps: CoreDeps, runners: RunnerRegistry, connection: ConnectionHandle, project: ProjectRef, name: string): Promise<void> {
  if (name === runners.embeddedName) return;
  const principal = connection.principal;
  const holder = await deps.repos.runnerNames.claimRunnerName(project.id, name, principal.name, Date.now());
  if (holder === principal.name || principal.role === "admin") return;
  throw conflict(
    `Runner name "${name}" in project "${project.name}" belongs to principal "${holder}", which first attached a runner under it; this credential ("${principal.name}") cannot attach under it: pick another name, or have an admin attach it`,
    { name, principal: holder },
  );
}

/**
 * The default runner is where a person's plain accept sends a command (with its env): only a person (in its
 * projects) or an admin makes a runner the default or takes the default from another. A credential below person
 * (a runner's) asking for it is refused, and nothing is attached: it attaches without default (SPEC §2).
 */
function refuseRunnerDefault(connection: ConnectionHandle, params: z.output<typeof RunnerAttachParams>): void {
  if (!params.default) return;
  const held = connection.principal.role;
  if (roleAllows(held, "person")) return;
  throw new SpoolError(
    "FORBIDDEN",
    `runner/attach with default${params.replaceDefault ? " and replaceDefault" : ""} needs the person role; this credential ("${connection.principal.name}") acts as ${held}: attach without default (spool runner without --default), or have a person or an admin attach it as the default`,
    { role: "person", held, method: "runner/attach", param: "default" },
  );
}
