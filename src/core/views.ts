/*
 * What features get from the store, through core (DESIGN §2: features call core, never store): the row
 * types core hands them, the typed reading of a producer's rows, and the row → wire views they return.
 */
export { cutLines, type LineReadOptions, memoryLineReads, OffsetPastLine } from "../store/chunk-reads.js";
export { channelFromRow, producerFromRow } from "../store/producer-row.js";
export { lineCount } from "../store/repositories.js";
export type { EntryRow, RunRow } from "../store/schema.js";
export { channelWire, countLines, entrySummary, producerWire, sliceLines } from "../store/views.js";

import type { RunOut } from "../protocol/common.js";
import { ENTRY } from "../protocol/status.js";
import type { Repositories } from "../store/repositories.js";
import type { RunRow } from "../store/schema.js";
import { runView } from "../store/views.js";

/** Runs as the wire has them, each with how many of its proposals wait for a decision (one query for all). */
export async function runViews(repos: Repositories, rows: readonly RunRow[]): Promise<RunOut[]> {
  const pending = await repos.runs.pendingProposals(
    rows.map((r) => r.id),
    ENTRY.proposed,
  );
  return rows.map((row) => runView(row, pending.get(row.id) ?? 0));
}

/** One run as the wire has it (runViews). */
export const runViewOf = async (repos: Repositories, row: RunRow): Promise<RunOut> => (await runViews(repos, [row]))[0]!;
