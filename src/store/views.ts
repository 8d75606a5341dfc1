import type { EntrySummaryOut, RunOut } from "../protocol/common.js";
import { countNewlines, lineCount, wireAttributes } from "./repositories.js";
import type { EntryRow, RunRow } from "./schema.js";

/** Wire shapes of rows: what methods return for runs and entries. */

export function runView(row: RunRow): RunOut {
  return {
    alias: row.alias,
    model: row.model,
    mode: row.mode,
    status: row.status,
    turn: row.turn,
    title: row.title,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function entrySummary(row: EntryRow): EntrySummaryOut {
  if (row.streamed) {
    return {
      path: row.path,
      status: row.status,
      turn: row.turn,
      attributes: wireAttributes(row),
      bytes: row.bytes,
      lines: lineCount(row),
      streamed: true,
    };
  }
  const body = Buffer.from(row.body, "utf8");
  return {
    path: row.path,
    status: row.status,
    turn: row.turn,
    attributes: wireAttributes(row),
    bytes: body.length,
    lines: countLines(body),
    streamed: false,
  };
}

export function countLines(data: Buffer): number {
  if (data.length === 0) return 0;
  return countNewlines(data) + (data[data.length - 1] === 10 ? 0 : 1);
}

/** `count` lines from 0-based `start` of an in-memory body. */
export function sliceLines(data: Buffer, start: number, count: number): Buffer {
  let from = 0;
  for (let i = 0; i < start; i++) {
    const nl = data.indexOf(10, from);
    if (nl === -1) return Buffer.alloc(0);
    from = nl + 1;
  }
  let to = from;
  for (let i = 0; i < count && to < data.length; i++) {
    const nl = data.indexOf(10, to);
    to = nl === -1 ? data.length : nl + 1;
  }
  return data.subarray(from, to);
}
