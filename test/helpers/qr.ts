import jsqr from "jsqr";

// jsqr is CommonJS: its module is the function itself, which also carries itself as `default` (its types say only that).
const jsQR = jsqr.default;

/**
 * Reads back a QR code a terminal would show: half-block characters (▀ ▄ █ and space) in ANSI colours (black
 * 30/40, white 37/47, default after a reset: light), two rows of modules a line. Returns what the code says, or
 * null when no code is found. Lines without a block character are not part of the code. Text without any colour
 * escape (written to a pipe or a file) is ink on paper: a block is dark, a space light.
 */
export function decodeTerminalQr(text: string): string | null {
  const plain = !text.includes("\x1b");
  const rows: boolean[][] = [];
  for (const line of text.split("\n")) {
    if (!/[▀▄█]/.test(line)) continue;
    let fg: boolean | null = null;
    let bg: boolean | null = null;
    const top: boolean[] = [];
    const bottom: boolean[] = [];
    // A dark module is black: `fg`/`bg` true for black, false for white, null for the terminal's own colour (light).
    for (const token of line.match(/\x1b\[[0-9;]*m|[^\x1b]/gu) ?? []) {
      if (token.startsWith("\x1b[")) {
        for (const code of token.slice(2, -1).split(";").map(Number)) {
          if (code === 0) fg = bg = null;
          else if (code === 30) fg = true;
          else if (code === 37) fg = false;
          else if (code === 40) bg = true;
          else if (code === 47) bg = false;
        }
        continue;
      }
      const f = fg === true || (plain && fg === null);
      const b = bg === true;
      const [t, u] = token === "█" ? [f, f] : token === "▀" ? [f, b] : token === "▄" ? [b, f] : [b, b];
      top.push(t);
      bottom.push(u);
    }
    rows.push(top, bottom);
  }
  if (rows.length === 0) return null;
  const scale = 4;
  const margin = 4;
  const modules = Math.max(...rows.map((r) => r.length));
  const width = (modules + margin * 2) * scale;
  const height = (rows.length + margin * 2) * scale;
  const pixels = new Uint8ClampedArray(width * height * 4).fill(255);
  rows.forEach((row, y) => {
    row.forEach((dark, x) => {
      if (!dark) return;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const at = (((y + margin) * scale + dy) * width + (x + margin) * scale + dx) * 4;
          pixels[at] = pixels[at + 1] = pixels[at + 2] = 0;
        }
      }
    });
  });
  return jsQR(pixels, width, height)?.data ?? null;
}
