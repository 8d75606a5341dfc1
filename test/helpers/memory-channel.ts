import type { LineRead } from "../../src/store/chunk-reads.js";
import type { EntryRow } from "../../src/store/schema.js";
import { countNewlines } from "../../src/store/store.js";

/** An in-memory channel: an entry row and a line reader with the store's semantics, counting the bytes it hands out. */
export function memoryChannel(data: Buffer | string, path = "sh://turn_1/build_1") {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const starts = [0];
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) if (i + 1 < bytes.length) starts.push(i + 1);
  const endsWithNewline = bytes.length > 0 && bytes[bytes.length - 1] === 10;
  const entry = {
    id: 1,
    path,
    bytes: bytes.length,
    newlines: countNewlines(bytes),
    ends_with_newline: Number(endsWithNewline),
  } as EntryRow;
  const stats = { reads: 0, bytesRead: 0 };
  const readLines = async (_entryId: number, line: number, count: number, maxBytes: number): Promise<LineRead> => {
    stats.reads++;
    if (bytes.length === 0 || line >= starts.length || count <= 0) return { data: Buffer.alloc(0), lines: 0, truncated: false };
    const start = starts[line]!;
    const end = line + count >= starts.length ? bytes.length : starts[line + count]!;
    let slice = bytes.subarray(start, end);
    let truncated = false;
    if (slice.length > maxBytes) {
      slice = slice.subarray(0, maxBytes);
      truncated = true;
    }
    stats.bytesRead += slice.length;
    const partial = slice.length > 0 && slice[slice.length - 1] !== 10 ? 1 : 0;
    return { data: slice, lines: countNewlines(slice) + partial, truncated };
  };
  return { entry, readLines, stats };
}

/** Whether `expected` appears in `lines` in order (other lines may come between). */
export function inOrder(lines: string[], expected: string[]): boolean {
  let i = 0;
  for (const line of lines) if (i < expected.length && line === expected[i]) i++;
  return i === expected.length;
}
