import { escapeFormat } from "../protocol/screen-text.js";

// ESC-introduced sequences: CSI (ESC [ … final), OSC (ESC ] … BEL or ST), other two-byte escapes,
// and the 8-bit CSI introducer. What remains is what a terminal would print.
const ANSI_PATTERN =
  /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[PX^_][^\u001b]*\u001b\\|\u001b[@-Z\\-_]|\u009b[0-?]*[ -/]*[@-~]/g;

/** Removes ANSI escape sequences (colours, cursor moves, titles). */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_PATTERN, "");
}

/**
 * Replays carriage returns and backspaces on one line the way a terminal shows
 * them: `\r` moves to column 0 and later characters overwrite earlier ones.
 */
function collapseLine(line: string): string {
  if (!line.includes("\r") && !line.includes("\b")) return line;
  const cells: string[] = [];
  let cursor = 0;
  for (const ch of line) {
    if (ch === "\r") cursor = 0;
    else if (ch === "\b") cursor = Math.max(0, cursor - 1);
    else {
      cells[cursor] = ch;
      cursor++;
    }
  }
  return cells.join("");
}

/**
 * A cheap, line-by-line approximation of a terminal: escapes removed,
 * carriage-return and backspace overwrites collapsed, other controls
 * dropped, format controls written as escapes (`escapeFormat`). It does not follow cursor moves or erases; the model view renders
 * output on a real terminal emulator instead (terminal.ts).
 */
export function cleanTerminalText(text: string): string {
  const stripped = escapeFormat(stripAnsi(text).replace(/\r\n/g, "\n"));
  return stripped
    .split("\n")
    .map(collapseLine)
    .join("\n")
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "");
}
