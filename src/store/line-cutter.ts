/** Cutting lines out of a channel's chunks: the chunks given in order, the pieces views of them, copied once. */
import { countNewlines } from "./store.js";

/** What a line read needs of a chunk. */
export interface ChunkPart {
  seq: number;
  newlines: number;
  data: Buffer;
}

export interface LineRead {
  data: Buffer;
  /** The same bytes as views of the rows read, in order, when `data` is joined only if asked for (a large read sent as bytes needs no joined copy). */
  parts?: readonly Buffer[];
  /** Lines in `data` (the last may lack its newline). */
  lines: number;
  /** True when `maxBytes` stopped the read before `count` lines. */
  truncated: boolean;
  /**
   * With `wholeLines`: the body is part of one line (longer than `maxBytes`, or read from `offset` into it) — its
   * bytes `offset` to `offset + bytes`; `end` when they reach the line's end (its newline, or the channel's end).
   */
  part?: { offset: number; bytes: number; end: boolean };
}

/** How a line read cuts: the options entry/get reads with (other readers keep the bytes up to maxBytes). */
export interface LineReadOptions {
  /**
   * A read cut by maxBytes ends after its last whole line; one whose first line alone is longer comes back as the
   * first maxBytes bytes of it, marked as a `part`.
   */
  wholeLines?: boolean;
  /** Bytes of the first line to skip: the read is the rest of that line from there, as a `part` (wholeLines). */
  offset?: number;
}

/** A line read whose `offset` lies past its line's end: the line holds `lineBytes` bytes (its newline counted). */
export class OffsetPastLine extends Error {
  constructor(readonly lineBytes: number) {
    super(`the line holds ${lineBytes} bytes`);
  }
}

export const EMPTY: LineRead = Object.freeze({ data: Buffer.alloc(0), lines: 0, truncated: false }) as LineRead;

/** Offset just past the `n`-th newline (from 1) of `data[from..]`, which holds `total` of them (n <= total): searched from the nearer end. */
function afterNewline(data: Buffer, from: number, n: number, total: number): number {
  let at: number;
  if (n <= total - n) {
    at = from - 1;
    for (let i = 0; i < n; i++) at = data.indexOf(10, at + 1);
  } else {
    // The n-th from the start is the (total - n + 1)-th from the end.
    at = data.length;
    for (let i = total - n; i >= 0 && at > from; i--) at = data.lastIndexOf(10, at - 1);
  }
  return at + 1;
}

/**
 * Cuts `count` lines, after skipping `skip` newlines, out of chunks given in
 * order: the pieces are views of the chunks, copied once into the result.
 * Uses each chunk's stored newline count to take or skip it whole, and to
 * search for the line boundaries from its nearer end.
 */
export class LineCutter {
  readonly #parts: Buffer[] = [];
  #size = 0;
  /** Newlines in the pieces (known from the stored counts unless maxBytes cut one). */
  #newlines = 0;
  #truncated = false;
  #skip: number;
  #remaining: number;
  /** Bytes of the first line still to skip (LineReadOptions.offset), and how many were skipped. */
  #skipBytes: number;
  #skipped = 0;
  readonly #wholeLines: boolean;
  readonly #offset: number | undefined;

  constructor(
    skip: number,
    count: number,
    private readonly maxBytes: number,
    options: LineReadOptions = {},
  ) {
    this.#skip = skip;
    this.#wholeLines = options.wholeLines === true || options.offset !== undefined;
    this.#offset = options.offset;
    this.#skipBytes = options.offset ?? 0;
    // From an offset, the read is the rest of one line.
    this.#remaining = options.offset === undefined ? count : 1;
  }

  /** Takes the next chunk; true once the read is complete (no later chunk is needed). */
  take({ data, newlines }: ChunkPart): boolean {
    let from = 0;
    let left = newlines;
    if (this.#skip > 0) {
      if (this.#skip > newlines) {
        // Every newline of the chunk is skipped; its bytes after the last one belong to the skipped line too.
        this.#skip -= newlines;
        return false;
      }
      from = afterNewline(data, 0, this.#skip, newlines);
      left = newlines - this.#skip;
      this.#skip = 0;
    }
    if (this.#skipBytes > 0) {
      // Within the line: its bytes in this chunk, its newline counted.
      const newline = data.indexOf(10, from);
      const span = (newline === -1 ? data.length : newline + 1) - from;
      if (this.#skipBytes >= span) {
        if (newline !== -1) throw new OffsetPastLine(this.#skipped + span);
        this.#skipBytes -= span;
        this.#skipped += span;
        return false;
      }
      from += this.#skipBytes;
      this.#skipped += this.#skipBytes;
      this.#skipBytes = 0;
    }
    if (from === data.length) return false;
    let end: number;
    if (this.#remaining > left) {
      // The whole rest of the chunk, its last line included even without its newline (the next chunk continues it).
      end = data.length;
      this.#remaining -= left;
      this.#newlines += left;
    } else {
      end = afterNewline(data, from, this.#remaining, left);
      this.#newlines += this.#remaining;
      this.#remaining = 0;
    }
    if (this.#size + (end - from) > this.maxBytes) {
      this.#parts.push(data.subarray(from, from + this.maxBytes - this.#size));
      this.#size = this.maxBytes;
      this.#truncated = true;
      return true;
    }
    this.#parts.push(data.subarray(from, end));
    this.#size += end - from;
    return this.#remaining === 0;
  }

  result(): LineRead {
    // An offset past the end of the channel's last line (one without its newline).
    if (this.#skipBytes > 0) throw new OffsetPastLine(this.#skipped);
    if (this.#offset !== undefined) {
      const data = Buffer.concat(this.#parts, this.#size);
      const end = !this.#truncated;
      return { data, lines: 0, truncated: this.#truncated, part: { offset: this.#offset, bytes: data.length, end } };
    }
    if (this.#size === 0) return { data: Buffer.alloc(0), lines: 0, truncated: this.#truncated };
    if (this.#truncated && this.#wholeLines) this.#toLastNewline();
    const parts = this.#parts;
    const size = this.#size;
    if (this.#truncated && this.#wholeLines && this.#newlines === -1) {
      // Its first line alone is longer than maxBytes: the first maxBytes bytes of it.
      const data = Buffer.concat(parts, size);
      return { data, lines: 0, truncated: true, part: { offset: 0, bytes: size, end: false } };
    }
    if (this.#truncated || parts.length === 1) {
      const data = Buffer.concat(parts, size);
      const partial = data[data.length - 1] !== 10 ? 1 : 0;
      return { data, lines: (this.#truncated ? countNewlines(data) : this.#newlines) + partial, truncated: this.#truncated };
    }
    // Not truncated: every piece holds bytes (an empty one is never taken).
    const last = parts[parts.length - 1]!;
    const partial = last[last.length - 1] !== 10 ? 1 : 0;
    // Joined when first asked for; `parts` is not enumerable, so the read looks (and compares) as before.
    let joined: Buffer | undefined;
    const read: LineRead = {
      get data() {
        joined ??= Buffer.concat(parts, size);
        return joined;
      },
      lines: this.#newlines + partial,
      truncated: false,
    };
    return Object.defineProperty(read, "parts", { value: parts });
  }

  /** Cuts the pieces of a truncated read after their last newline (none: #newlines becomes -1, the pieces stay). */
  #toLastNewline(): void {
    for (let i = this.#parts.length - 1; i >= 0; i--) {
      const piece = this.#parts[i]!;
      const at = piece.lastIndexOf(10);
      if (at === -1) continue;
      this.#parts.length = i + 1;
      this.#parts[i] = piece.subarray(0, at + 1);
      this.#size = this.#parts.reduce((sum, p) => sum + p.length, 0);
      return;
    }
    this.#newlines = -1;
  }
}

/**
 * Cuts `count` lines, after skipping `skip` newlines, out of chunks held in memory, as a read of the store does
 * (the server's warm-up runs the cutter once at start with it, so the first read after a start does not compile it).
 */
export function cutLines(
  chunks: readonly { newlines: number; data: Buffer }[],
  skip: number,
  count: number,
  maxBytes: number,
  options: LineReadOptions = {},
): LineRead {
  const cutter = new LineCutter(skip, count, maxBytes, options);
  for (const chunk of chunks) if (cutter.take({ seq: 0, ...chunk })) break;
  return cutter.result();
}
