import type { Kysely } from "kysely";
import { notFound } from "../../rpc/errors.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { findRun } from "../../store/runs.js";
import type { Database, RunRow } from "../../store/schema.js";
import type { RunOut } from "../schemas.js";

export function runView(row: RunRow): RunOut {
  return {
    alias: row.alias,
    model: row.model,
    mode: row.mode,
    status: row.status,
    turn: row.turn,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The run of the caller's project with this alias; another project's run is simply not found. */
export async function requireRun(db: Kysely<Database>, project: ProjectRef, alias: string): Promise<RunRow> {
  const run = await findRun(db, project.id, alias);
  if (!run) throw notFound(`Run "${alias}"`, { run: alias });
  return run;
}
