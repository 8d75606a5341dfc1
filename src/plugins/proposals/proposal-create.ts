import { relative, resolve, isAbsolute } from "node:path";
import { z } from "zod";
import { SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../../rpc/method.js";
import { insertEntry } from "../../store/entries.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import type { App } from "../plugin.js";
import { requireRun } from "../runs/run-view.js";
import { RunAlias } from "../schemas.js";
import type { ProducerRegistry } from "./producer.js";
import { proposalNotice } from "./proposal-view.js";
import { logPath, slugFromCommand } from "./slug.js";

export const ProposalCreateParams = z.strictObject({
  run: RunAlias,
  tool: z.string().min(1).describe("A registered producer: sh, env, …"),
  command: z.string().min(1).max(64 * 1024).describe("The shell command"),
  cwd: z.string().min(1).max(4096).optional().describe("Working directory, relative to the project root (default: the root)"),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional().describe("Extra environment variables"),
  timeout_ms: z.number().int().min(1).max(7 * 24 * 3600 * 1000).optional().describe("Kill the command after this long (default: the server's commandTimeoutMs)"),
});

const invalid = (path: string, message: string) =>
  new SpoolError("INVALID_PARAMS", `Invalid params for proposal/create: ${message}`, { issues: [{ path, message }] });

/** A cwd as a path relative to the project root ("" is the root); outside the root only when the configuration allows it. */
function confineCwd(project: ProjectRef, cwd: string | undefined, allowOutside: boolean): string {
  if (cwd === undefined) return "";
  const target = resolve(project.root, cwd);
  const rel = relative(project.root, target);
  if (!allowOutside && (rel.startsWith("..") || isAbsolute(rel))) {
    throw invalid("cwd", `"${cwd}" is outside the project root (limits.allowCwdOutsideRoot is off)`);
  }
  return rel;
}

/** Creates a proposal (the log entry at 202) and tells every connection of the project. */
export async function createProposal(
  app: App,
  registry: ProducerRegistry,
  project: ProjectRef,
  run: RunRow,
  input: {
    tool: string;
    command: string;
    cwd?: string;
    env?: Record<string, string>;
    timeout_ms?: number;
    proposedBy: string;
    /** More attributes for the log entry (the agent loop records its tool call here). */
    extra?: Record<string, unknown>;
  },
): Promise<EntryRow> {
  const producer = registry.get(input.tool);
  if (!producer) throw invalid("tool", `unknown tool "${input.tool}"; registered: ${registry.list().map((p) => p.tool).join(", ")}`);
  const filtered = await app.applyFilter("proposal:create", {
    tool: input.tool,
    command: input.command,
    cwd: confineCwd(project, input.cwd, app.config.limits.allowCwdOutsideRoot),
    env: input.env ?? {},
  });
  const cwd = confineCwd(project, filtered.cwd ?? undefined, app.config.limits.allowCwdOutsideRoot);
  const base = slugFromCommand(filtered.command);
  const now = Date.now();
  // Start after the suffixes this turn already uses (one query, not one failed insert per taken slug).
  const prefix = logPath(run.turn, producer.tool, base);
  const taken = await app.store.db
    .selectFrom("entries")
    .select("path")
    .where("run_id", "=", run.id)
    .where((eb) => eb.or([eb("path", "=", prefix), eb(eb.fn("substr", ["path", eb.val(1), eb.val(prefix.length + 1)]), "=", `${prefix}-`)]))
    .execute();
  let start = 1;
  for (const { path } of taken) {
    const suffix = path === prefix ? 1 : Number(path.slice(prefix.length + 1));
    if (Number.isInteger(suffix)) start = Math.max(start, suffix + 1);
  }
  for (let n = start; ; n++) {
    const slug = n === 1 ? base : `${base}-${n}`;
    try {
      const row = await insertEntry(app.store.db, {
        run_id: run.id,
        path: logPath(run.turn, producer.tool, slug),
        scheme: "log",
        turn: run.turn,
        status: 202,
        attributes: JSON.stringify({
          tool: producer.tool,
          command: filtered.command,
          cwd,
          env: filtered.env,
          ...(input.timeout_ms ? { timeoutMs: input.timeout_ms } : {}),
          slug,
          readOnly: producer.readOnly,
          proposedBy: input.proposedBy,
          ...input.extra,
        }),
        created_at: now,
        updated_at: now,
      });
      app.notifyProject(project.id, "run/proposal", proposalNotice(run.alias, row));
      await app.emit("entry:status", { projectId: project.id, run, entry: row, previous: null });
      return row;
    } catch (error) {
      // The slug is taken in this turn: try the next suffix.
      if (error instanceof Error && /UNIQUE constraint failed: entries\.run_id, entries\.path/.test(error.message)) continue;
      throw error;
    }
  }
}

export function proposalCreateMethod(app: App, registry: ProducerRegistry) {
  return defineMethod({
    name: "proposal/create",
    description: "Proposes a command for a run, exactly as the model would: the log entry is written at 202 and `run/proposal` goes to every connection of the project.",
    params: ProposalCreateParams,
    result: z.object({ path: z.string(), turn: z.number().int() }),
    handler: async (params, ctx) => {
      const run = await requireRun(app.store.db, ctx.project, params.run);
      const row = await createProposal(app, registry, ctx.project, run, {
        ...params,
        proposedBy: ctx.connection.clientInfo?.name ?? `connection ${ctx.connection.id}`,
      });
      return { path: row.path, turn: row.turn };
    },
  });
}
