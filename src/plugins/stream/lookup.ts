import { notFound } from "../../rpc/errors.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { findEntry } from "../../store/entries.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { App } from "../plugin.js";
import { requireRun } from "../runs/run-view.js";

/** The run and the producer's log entry named by `{run, path}`, in the caller's project. */
export async function requireProducer(app: App, project: ProjectRef, runAlias: string, path: string): Promise<{ run: RunRow; log: EntryRow }> {
  const run = await requireRun(app.store.db, project, runAlias);
  const log = await findEntry(app.store.db, run.id, path);
  if (!log || log.scheme !== "log") throw notFound(`Producer "${path}"`, { run: runAlias, path });
  return { run, log };
}
