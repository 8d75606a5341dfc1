import { fromBase64 } from "./base64.js";
import type { CallsAndListens } from "./stream-watch.js";

/**
 * Reads an entry's lines byte-exact, a page at a time (each at most the server's read limit): from line `from`
 * (1-based, default 1), `count` of them (default: to the end). A page ends after a whole line; a line longer than
 * the limit comes in parts (`offset`). `onBytes` gets the bytes in order and is awaited, so a slow consumer slows
 * the reading instead of piling pages up. Resolves with the lines and bytes read.
 */
export async function readLines(
  client: Pick<CallsAndListens, "call">,
  run: string,
  path: string,
  onBytes: (bytes: Uint8Array) => void | Promise<void>,
  options: { from?: number; count?: number } = {},
): Promise<{ lines: number; bytes: number }> {
  let line = options.from ?? 1;
  let left = options.count ?? Number.MAX_SAFE_INTEGER;
  let offset: number | undefined;
  let lines = 0;
  let bytes = 0;
  while (left > 0) {
    const page = await client.call("entry/get", {
      run,
      path,
      line,
      encoding: "base64",
      ...(offset !== undefined ? { offset } : left < Number.MAX_SAFE_INTEGER ? { limit: left } : {}),
    });
    const data = fromBase64(page.body);
    bytes += data.length;
    if (data.length > 0) await onBytes(data);
    if (page.part) {
      if (!page.part.end && page.part.bytes === 0) throw new Error(`entry/get returned an empty part of line ${line} of ${path}`);
      if (!page.part.end) {
        offset = page.part.offset + page.part.bytes;
        continue;
      }
      offset = undefined;
      line++;
      left--;
      lines++;
      continue;
    }
    lines += page.range.lines;
    if (!page.truncated || page.range.lines === 0) break;
    line += page.range.lines;
    left -= page.range.lines;
  }
  return { lines, bytes };
}
