import type { LineRead } from "../store/chunks.js";
import { lineCount } from "../store/entries.js";
import type { EntryRow } from "../store/schema.js";

/** Reads `count` lines from 0-based `line` of a streamed entry, at most `maxBytes`. */
export type LineReader = (entryId: number, line: number, count: number, maxBytes: number) => Promise<LineRead>;

import { cleanTerminalText } from "./terminal-text.js";

/** Rough tokens → characters for budgeting (about 4 characters a token for English text and code). */
export const CHARS_PER_TOKEN = 4;
/** Lines read from each end of a large channel before cleaning and budgeting. */
const EDGE_LINES = 2000;

export interface ModelView {
  text: string;
  /** Lines and bytes of the raw channel left out of `text`. */
  omittedLines: number;
  omittedBytes: number;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function takeHead(lines: string[], budget: number): string[] {
  const out: string[] = [];
  let used = 0;
  for (const line of lines) {
    const cost = line.length + 1;
    if (used + cost > budget) {
      if (out.length === 0) out.push(line.slice(0, Math.max(0, budget - 1)));
      break;
    }
    out.push(line);
    used += cost;
  }
  return out;
}

/**
 * What the model sees of a streamed channel: ANSI removed, carriage-return
 * overwrites collapsed, and when it does not fit `budgetTokens`, a head and
 * a tail with a line that says what was left out and how to read it with
 * `get`. Reads only the two ends of a large channel, never all of it.
 */
export async function channelModelView(readLines: LineReader, entry: EntryRow, budgetTokens: number): Promise<ModelView> {
  const budget = Math.max(200, budgetTokens * CHARS_PER_TOKEN);
  const total = lineCount(entry);
  const half = Math.floor(budget / 2);
  if (entry.bytes <= budget * 2) {
    const raw = await readLines(entry.id, 0, total, entry.bytes + 1);
    const cleaned = cleanTerminalText(raw.data.toString("utf8"));
    if (cleaned.length <= budget) return { text: cleaned, omittedLines: 0, omittedBytes: 0 };
    const lines = cleaned.replace(/\n$/, "").split("\n");
    return cut(lines, 0, lines, lines.length, entry, half);
  }
  // Large: read the first and last lines only (each end at most `budget` raw bytes… times a margin for escapes).
  const headRaw = await readLines(entry.id, 0, EDGE_LINES, budget * 4);
  const tailStart = Math.max(headRaw.lines, total - EDGE_LINES);
  const tailRaw = await readLines(entry.id, tailStart, total - tailStart, budget * 4);
  const headLines = cleanTerminalText(headRaw.data.toString("utf8")).split("\n");
  const tailLines = cleanTerminalText(tailRaw.data.toString("utf8")).replace(/\n$/, "").split("\n");
  return cut(headLines, tailStart, tailLines, total, entry, half);
}

/** Keeps a head of `headFrom` and a tail of `tailFrom` (which starts at line index `tailStart`) within the budget. */
function cut(headFrom: string[], tailStart: number, tailFrom: string[], total: number, entry: EntryRow, half: number): ModelView {
  const head = takeHead(headFrom, half);
  const tail = takeHead([...tailFrom].reverse(), half).reverse();
  const firstOmitted = head.length + 1; // 1-based
  const lastOmitted = tailStart + tailFrom.length - tail.length; // 1-based, inclusive
  const omittedLines = Math.max(0, lastOmitted - firstOmitted + 1);
  const shownBytes = Buffer.byteLength(head.join("\n")) + Buffer.byteLength(tail.join("\n")) + 2;
  const omittedBytes = Math.max(0, entry.bytes - shownBytes);
  const note =
    `[… ${plural(omittedLines, "line")} (about ${plural(omittedBytes, "byte")}) of ${entry.path} left out (${plural(total, "line")} in all); ` +
    `read them with the get tool: {"path": "${entry.path}", "line": ${firstOmitted}, "limit": 200} …]`;
  return { text: `${head.join("\n")}\n${note}\n${tail.join("\n")}\n`, omittedLines, omittedBytes };
}
