import { describe, expect, it } from "vitest";
import { escapeFormat, ScreenText } from "../../src/protocol/screen-text.js";

const page = (...chunks: string[]) => {
  const t = new ScreenText({ gutter: null, lineEdits: true });
  return chunks.map((c) => t.push(c)).join("");
};

describe("ScreenText with line edits (the page's terminal)", () => {
  it("passes the edits that stay on the cursor's line: a line editor's echo and a progress line draw", () => {
    const edits = "abc\b\u001b[K\u001b[2D\u001b[3C\u001b[10G\u001b[2P\u001b[@\u001b[4X\u001b[2K\r50%";
    expect(page(edits)).toBe(edits);
    expect(page("ab\u001b[", "K")).toBe("ab\u001b[K");
  });

  it("shows as text whatever reaches another line, and on that line no erase hides what was shown", () => {
    expect(page("old\r\n\u001b[1A\u001b[2KAccept? [y]es\r\n")).toBe("old\r\n^[[1A^[[2KAccept? [y]es\r\n");
    expect(page("\u001b[H\u001b[2J\u001b[5;1H\u001bM\u001b[S\u001b[3;4r")).toBe("^[[H^[[2J^[[5;1H^[M^[[S^[[3;4r");
    // A new line: its edits pass again.
    expect(page("\u001b[A\n\u001b[K")).toBe("^[[A\n\u001b[K");
  });

  it("without lineEdits (the CLI) a line edit is text too", () => {
    const t = new ScreenText({ gutter: null });
    expect(t.push("x\u001b[K")).toBe("x^[[K");
  });
});

describe("escapeFormat", () => {
  it("writes bidi, zero-width, tag and separator characters as escapes; keeps the joiner of an emoji", () => {
    expect(escapeFormat("a\u202Eb\u2066c\u200Bd\u00ADe\u{E0041}f\u2028g\uFEFF")).toBe("a\\u{202e}b\\u{2066}c\\u{200b}d\\u{ad}e\\u{e0041}f\\u{2028}g\\u{feff}");
    expect(escapeFormat("\u{1F469}\u200D\u{1F4BB} plain")).toBe("\u{1F469}\u200D\u{1F4BB} plain");
  });
});
