import { Terminal } from "@xterm/headless";
import { describe, expect, it } from "vitest";
import { ScreenText, screenSafe, TERMINAL_RESET, TerminalWriter } from "../../src/cli/terminal-writer.js";

const ESC = "\u001b";

/** Every escape character in `out` starts a whole SGR sequence: the only thing a terminal may obey. */
function onlySgr(out: string): void {
  const escapes = out.match(/\u001b/g)?.length ?? 0;
  const sgr = out.match(/\u001b\[[0-9;:]*m/g)?.length ?? 0;
  expect(escapes, JSON.stringify(out)).toBe(sgr);
  expect(out, JSON.stringify(out)).not.toMatch(/[\u0080-\u009f\u000e\u000f\u0007\u0000\u000b\u000c\u007f]/);
}

/** The visible screen of an emulator fed `data`. */
async function screenOf(data: string, cols = 40, rows = 10): Promise<string[]> {
  const term = new Terminal({ cols, rows, allowProposedApi: true });
  await new Promise<void>((resolve) => term.write(data, resolve));
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let i = buffer.viewportY; i < buffer.viewportY + rows; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? "");
  return lines;
}

const ATTACKS: Record<string, string> = {
  "cursor up and to the home position": `${ESC}[5A${ESC}[H${ESC}[10;3H${ESC}[2G${ESC}[3d`,
  "cursor save and restore (DECSC/DECRC, SCOSC/SCORC)": `${ESC}7${ESC}8${ESC}[s${ESC}[u`,
  "erase display and line": `${ESC}[2J${ESC}[3J${ESC}[K${ESC}[1K`,
  "insert and delete lines and characters": `${ESC}[5L${ESC}[3M${ESC}[4P${ESC}[2@`,
  "a scroll region (DECSTBM) and scrolling": `${ESC}[1;2r${ESC}[5S${ESC}[2T${ESC}M${ESC}D`,
  "modes: no wrap, origin, alternate screens, hidden cursor, bracketed paste, mouse": `${ESC}[?7l${ESC}[?6h${ESC}[?1049h${ESC}[?47h${ESC}[?1047h${ESC}[?25l${ESC}[?2004h${ESC}[?1000h${ESC}[4h`,
  "OSC: window title, hyperlink (OSC 8), clipboard write (OSC 52)": `${ESC}]0;pwned\u0007${ESC}]8;;https://evil.example/\u0007click${ESC}]8;;\u0007${ESC}]52;c;ZWNobyBQV05FRA==${ESC}\\`,
  "DCS, APC, PM and SOS strings": `${ESC}P+q544e${ESC}\\${ESC}_apc${ESC}\\${ESC}^pm${ESC}\\${ESC}Xsos${ESC}\\`,
  "character sets: DEC graphics in G0, SO/SI": `${ESC}(0${ESC})0\u000e\u000f${ESC}*B${ESC}#8`,
  "C1 controls (CSI, OSC, ST as single code points)": "\u009b2J\u009d0;x\u009c\u0085\u0084\u008d",
  "a full reset (RIS) and keypad modes": `${ESC}c${ESC}=${ESC}>`,
  "SGR-like sequences that are not SGR": `${ESC}[?1m${ESC}[>4;2m${ESC}[ 1m${ESC}[1$m`,
  "other C0: BEL, VT, FF, NUL, DEL": "\u0007\u000b\u000c\u0000\u007f",
};

describe("ScreenText: untrusted text made safe for a terminal", () => {
  it("keeps printable text, SGR colours and attributes, newline, carriage return, tab and backspace", () => {
    const text = `plain ü 中文 😀 ${ESC}[1;31mred${ESC}[0m ${ESC}[38;2;1;2;3mtrue${ESC}[38:5:9mcolon${ESC}[m\r\n\ttab\bx\n`;
    expect(screenSafe(text)).toBe(text);
  });

  for (const [what, bytes] of Object.entries(ATTACKS)) {
    it(`neutralises ${what}: shown as caret/escape text, never obeyed`, () => {
      const out = screenSafe(`before ${bytes} after`);
      onlySgr(out);
      expect(out.startsWith("before ")).toBe(true);
      expect(out.endsWith(" after")).toBe(true);
    });
  }

  it("shows an escape as ^[, C0 controls in caret notation, DEL as ^?, C1 as \\x9b and bidi controls as \\u{…}", () => {
    expect(screenSafe(`${ESC}[1;2r`)).toBe("^[[1;2r");
    expect(screenSafe(`${ESC}]52;c;eA==\u0007`)).toBe("^[]52;c;eA==^G");
    expect(screenSafe(`${ESC}(0\u000e\u000f\u0000\u007f`)).toBe("^[(0^N^O^@^?");
    expect(screenSafe("\u009b2J")).toBe("\\x9b2J");
    expect(screenSafe("abc\u202edef\u2066")).toBe("abc\\u{202e}def\\u{2066}");
  });

  it("an SGR sequence split between chunks at any point comes out whole, as if it had come in one chunk", () => {
    const text = `a${ESC}[38;5;196mred${ESC}[0mb`;
    for (let cut = 0; cut <= text.length; cut++) {
      const t = new ScreenText();
      expect(t.push(text.slice(0, cut)) + t.push(text.slice(cut)) + t.end(), `cut at ${cut}`).toBe(text);
    }
  });

  it("a scroll region or an OSC 52 split between chunks at any point is still neutralised, and the same text comes out", () => {
    for (const text of [`x${ESC}[1;2ry`, `x${ESC}]52;c;eA==${ESC}\\y`, `x${ESC}[?1049hy`, `x${ESC}7y`]) {
      const whole = screenSafe(text);
      for (let cut = 0; cut <= text.length; cut++) {
        const t = new ScreenText();
        const out = t.push(text.slice(0, cut)) + t.push(text.slice(cut)) + t.end();
        expect(out, `cut at ${cut}`).toBe(whole);
        onlySgr(out);
      }
    }
  });

  it("one character at a time through every attack, nothing but SGR reaches the terminal", () => {
    const t = new ScreenText();
    let out = "";
    for (const c of Object.values(ATTACKS).join("x")) out += t.push(c);
    out += t.end();
    onlySgr(out);
  });

  it("an escape at the very end is held until the next chunk, and shown by end() when none comes", () => {
    const t = new ScreenText();
    expect(t.push(`ok${ESC}`)).toBe("ok");
    expect(t.push("[")).toBe("");
    expect(t.end()).toBe("^[[");
  });

  it("an endless SGR-looking sequence is not held for ever: past 64 characters it is text", () => {
    const out = screenSafe(`${ESC}[${"1;".repeat(100)}m`);
    onlySgr(out);
    expect(out.startsWith("^[[1;1;")).toBe(true);
  });

  it("the four attacks of issue 36 leave the screen as it was: text below the attack stays where a reader expects it", async () => {
    for (const attack of [`${ESC}[1;2r`, `${ESC}[?7l`, `${ESC}7${ESC}[1;1H${ESC}[2J`, `${ESC}[?1049h`, `${ESC}[3A${ESC}[2L`]) {
      const screen = await screenOf(`first\r\n${screenSafe(`fake ${attack}`)}\r\nREAL LINE ${"x".repeat(50)}END`);
      const text = screen.join("\n");
      expect(text, attack).toContain("first");
      expect(text, attack).toContain("REAL LINE");
      // Wrap stays on: the tail of a long line is on the screen.
      expect(text, attack).toContain("END");
    }
  });
});

describe("ScreenText on a terminal: a gutter on every line, wrapped before the margin", () => {
  const gutterText = (width: number | null) => new ScreenText({ gutter: "│ ", gutterCells: 2, width: () => width });

  it("every line starts with the gutter; a carriage return draws it again; a trailing newline leaves no empty gutter", () => {
    const t = gutterText(null);
    expect(t.push("one\ntwo\r2\n")).toBe("│ one\n│ two\r│ 2\n");
    expect(t.atLineStart).toBe(true);
  });

  it("a line left after a carriage return is not empty: what follows it starts on a new line, and the spinner may not draw there", () => {
    const t = gutterText(40);
    expect(t.push("progress 50% FAKE\r")).toBe("│ progress 50% FAKE\r");
    expect(t.atLineStart).toBe(false);
    expect(t.endLine()).toBe("\n");
  });

  it("the colours replayed after the gutter are whole sequences, however many came", () => {
    const t = gutterText(40);
    let out = t.push(`${ESC}[1m${ESC}[38;5;1m`.repeat(200));
    out += t.push("\nx");
    const replayed = out.slice(out.lastIndexOf("│ ") + 2, -1);
    expect(replayed.startsWith(ESC)).toBe(true);
    expect(replayed).toMatch(/^(\u001b\[[0-9;]*m)+$/);
  });

  it("a line longer than the terminal is broken by Spool before the last column, the next part behind the gutter", async () => {
    const t = gutterText(20);
    const out = t.push("▶ proposal ".repeat(6));
    for (const line of await screenOf(out, 20, 10)) if (line !== "") expect(line.startsWith("│ "), line).toBe(true);
  });

  it("wide characters are counted two cells: CJK and emoji never wrap past the gutter", async () => {
    const t = gutterText(21);
    const out = t.push("中文字😀".repeat(10));
    for (const line of await screenOf(out, 21, 12)) if (line !== "") expect(line.startsWith("│ "), line).toBe(true);
  });

  it("a backspace never moves into the gutter; tabs are spaces up to the next stop", async () => {
    const t = gutterText(40);
    const out = t.push(`ab\b\b\b\b\b\bX\tY\n`);
    expect(out).toBe("│ ab\b\b^H^H^H^HX       Y\n");
    expect((await screenOf(out))[0]!.startsWith("│ ")).toBe(true);
    // After a wide character the column is not known exactly: a backspace is shown, not obeyed.
    expect(gutterText(40).push("中\b")).toBe("│ 中^H");
  });

  it("endLine ends a line in progress, turns off colours the text turned on, and does nothing on a fresh line", () => {
    const t = gutterText(40);
    expect(t.endLine()).toBe("");
    expect(t.push(`${ESC}[8mhidden`)).toBe(`${ESC}[8m${ESC}[0m│ ${ESC}[8mhidden`);
    expect(t.endLine()).toBe(`${ESC}[0m\n`);
    expect(t.endLine()).toBe("");
  });

  it("the text's own colours or concealment never hide the gutter: it is drawn with attributes off, theirs replayed after it", async () => {
    const t = gutterText(40);
    const out = t.push(`${ESC}[8m${ESC}[30;40m\n  Accept? [y]es\n${ESC}[0mplain\n`);
    expect(out).toContain(`${ESC}[0m│ ${ESC}[8m${ESC}[30;40m  Accept?`);
    // A full reset of its own empties what is replayed.
    expect(out).toContain(`\n${ESC}[0m│ plain\n`);
  });
});

describe("TerminalWriter", () => {
  const sink = (isTTY: boolean) => {
    const written: string[] = [];
    return { written, stream: { isTTY, columns: 80, write: (s: string | Uint8Array) => written.push(String(s)) > 0 } };
  };

  it("on a terminal: blocks of model text and command output never share a line with each other or with Spool's lines", () => {
    const { written, stream } = sink(true);
    const w = new TerminalWriter(stream);
    w.untrusted("I will list", { kind: "model" });
    w.untrusted(Buffer.from("listed\n"), { kind: "output" });
    w.untrusted("done", { kind: "model" });
    w.own("▶ proposal\n");
    expect(written.join("")).toBe("│ I will list\n│ listed\n│ done\n▶ proposal\n");
  });

  it("decodes UTF-8 split between chunks, per stream", () => {
    const { written, stream } = sink(false);
    const w = new TerminalWriter(stream);
    const bytes = Buffer.from("é中");
    w.untrusted(bytes.subarray(0, 1), { kind: "output" });
    w.untrusted(bytes.subarray(1, 3), { kind: "output" });
    w.untrusted(bytes.subarray(3), { kind: "output" });
    expect(written.join("")).toBe("é中");
  });

  it("reset() writes the terminal reset on a terminal only, after ending an open line", () => {
    const tty = sink(true);
    const w = new TerminalWriter(tty.stream);
    w.untrusted("text", { kind: "model" });
    w.reset();
    expect(tty.written.join("")).toBe(`│ text\n${TERMINAL_RESET}`);
    const pipe = sink(false);
    new TerminalWriter(pipe.stream).reset();
    expect(pipe.written.join("")).toBe("");
  });

  it("the reset leaves the alternate screen, ends a scroll region, turns wrap on and origin mode off, selects ASCII and shows the cursor", async () => {
    const term = new Terminal({ cols: 30, rows: 6, allowProposedApi: true });
    const write = (data: string) => new Promise<void>((resolve) => term.write(data, resolve));
    await write(`line1\r\nline2\r\n${ESC}[?1049h${ESC}[2;3r${ESC}[?6h${ESC}[?7l${ESC}(0${ESC}[?25l${ESC}[8m`);
    await write(TERMINAL_RESET);
    expect(term.buffer.active.type).toBe("normal");
    expect(term.modes.wraparoundMode).toBe(true);
    expect(term.modes.originMode).toBe(false);
    await write(`\r\n${"q".repeat(35)}\r\nafter`);
    const buffer = term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? "");
    // ASCII, not DEC line drawing (q would be ─); the long line wrapped; nothing is confined to rows 2-3.
    expect(lines.join("\n")).toContain("q".repeat(30));
    expect(lines.join("\n")).toContain("after");
    expect(lines.join("\n")).toContain("line1");
  });
});
