/** The line counts of a streamed body, as an entry's row and its wire view carry them. */
export interface LineCounts {
  bytes: number;
  newlines: number;
  /** 0/1 in a row, a boolean on the wire. */
  ends_with_newline: number | boolean;
}

/** Line count of a streamed body: newlines, plus one for a last line without its newline. */
export function lineCount(row: LineCounts): number {
  return row.newlines + (row.bytes > 0 && !row.ends_with_newline ? 1 : 0);
}
