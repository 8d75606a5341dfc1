import { z } from "zod";
import { conflict, notFound, SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../../rpc/method.js";
import { findEntry, parseAttributes, type Attributes } from "../../store/entries.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { acceptProposal, rejectProposal } from "../../store/producers.js";
import type { App } from "../plugin.js";
import { requireRun } from "../runs/run-view.js";
import { EntryPath, RunAlias, Status } from "../schemas.js";
import type { ProducerRegistry } from "./producer.js";
import { channelPath } from "./slug.js";

export const ResolvedChannel = z.object({ channel: z.number().int(), name: z.string(), path: z.string(), status: Status });

export const RunResolveResult = z.object({
  path: z.string(),
  status: Status.describe("The log entry's new status: 200 accepted, 403 rejected"),
  runner: z.string().nullable(),
  channels: z.array(ResolvedChannel),
});

export const RunResolveParams = z.strictObject({
  run: RunAlias,
  path: EntryPath.describe("The proposal's log entry path"),
  decision: z.enum(["accept", "reject"]),
  reason: z.string().max(4096).optional(),
  runner: z.string().min(1).max(200).optional().describe('Runner to execute it; "self" = the accepting client streams the output itself'),
});

/** An accepted proposal on its way to a runner. */
export interface AcceptedWork {
  project: ProjectRef;
  run: RunRow;
  log: EntryRow;
  runner: string;
  attributes: Attributes;
  channels: { channel: number; name: string; path: string }[];
}

/**
 * Chooses who executes an accepted proposal and hands the work over. The
 * proposals plugin only knows "self" (the accepting side streams the output
 * itself); the runners plugin installs the real one.
 */
export interface RunnerDispatch {
  /** The runner's name, or "self"; throws NO_RUNNER when there is none. Called before anything is written. */
  select(project: ProjectRef, requested: string | undefined): string | Promise<string>;
  /** Hands accepted work to the selected runner (not called for "self"). */
  dispatch(work: AcceptedWork): void;
}

export const selfOnly: RunnerDispatch = {
  select(_project, requested) {
    if (requested === "self") return "self";
    throw new SpoolError(
      "NO_RUNNER",
      requested === undefined
        ? 'No runner is attached to execute this proposal; accept with runner "self" to stream the output yourself'
        : `No runner named "${requested}"; accept with runner "self" to stream the output yourself`,
      requested === undefined ? {} : { runner: requested },
    );
  },
  dispatch() {
    throw new Error("selfOnly dispatches nothing");
  },
};

export function runResolveMethod(app: App, registry: ProducerRegistry, runners: () => RunnerDispatch) {
  return defineMethod({
    name: "run/resolve",
    description: "Accepts or rejects a pending proposal, from any connection of the project. Accept opens the data channels at 102; reject sets the log entry to 403.",
    params: RunResolveParams,
    result: RunResolveResult,
    handler: async (params, ctx) => {
      const db = app.store.db;
      const run = await requireRun(db, ctx.project, params.run);
      const log = await findEntry(db, run.id, params.path);
      if (!log || log.scheme !== "log") throw notFound(`Proposal "${params.path}"`, { run: params.run, path: params.path });
      if (log.status !== 202) throw conflict(`"${params.path}" is not a pending proposal (status ${log.status})`, { status: log.status });
      const attributes = parseAttributes(log);
      const resolvedBy = ctx.connection.clientInfo?.name ?? `connection ${ctx.connection.id}`;
      if (params.decision === "reject") {
        const next = { ...attributes, decision: "reject", reason: params.reason ?? "rejected", resolvedBy };
        if (!(await rejectProposal(db, log, next))) throw conflict(`"${params.path}" was resolved by someone else`);
        const result = { path: log.path, status: 403, runner: null, channels: [] };
        app.notifyProject(ctx.project.id, "run/resolved", { run: run.alias, ...result, decision: "reject" });
        await app.emit("entry:status", { projectId: ctx.project.id, run, entry: { ...log, status: 403 }, previous: 202 });
        return result;
      }
      const tool = String(attributes.tool);
      const producer = registry.get(tool);
      if (!producer) throw new SpoolError("UNSUPPORTED", `The "${tool}" producer is no longer loaded`);
      const runner = await runners().select(ctx.project, params.runner);
      const slug = String(attributes.slug);
      const plan = Object.entries(producer.channels).map(([n, name]) => ({
        channel: Number(n),
        path: channelPath(tool, log.turn, slug, Number(n)),
        attributes: { command: attributes.command, channel: Number(n), name, log: log.path },
      }));
      const next = { ...attributes, decision: "accept", runner, resolvedBy, ...(params.reason ? { reason: params.reason } : {}) };
      const rows = await acceptProposal(db, log, plan, next);
      if (!rows) throw conflict(`"${params.path}" was resolved by someone else`);
      const result = {
        path: log.path,
        status: 200,
        runner,
        channels: rows.map((r) => ({ channel: r.channel!, name: producer.channels[r.channel!]!, path: r.path, status: r.status })),
      };
      app.notifyProject(ctx.project.id, "run/resolved", { run: run.alias, ...result, decision: "accept" });
      await app.emit("entry:status", { projectId: ctx.project.id, run, entry: { ...log, status: 200 }, previous: 202 });
      if (runner !== "self") {
        runners().dispatch({ project: ctx.project, run, log: { ...log, status: 200 }, runner, attributes: next, channels: result.channels });
      }
      return result;
    },
  });
}
