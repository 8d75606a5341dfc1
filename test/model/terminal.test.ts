import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { channelModelView } from "../../src/model/model-view.js";
import { renderTerminal, renderTerminalText } from "../../src/model/terminal.js";
import { inOrder, memoryChannel } from "../helpers/memory-channel.js";

const FIXTURES = join(import.meta.dirname, "fixtures");
const NAMES = ["npm", "cargo", "vitest", "docker", "tqdm", "plain"] as const;

describe("the terminal the model view is rendered on", () => {
  it("erases to the end of the line (ESC[K) instead of leaving a progress bar's remnants", async () => {
    expect(await renderTerminalText("Building [=====>     ] 3/10: foo\r\u001b[K   Compiling bar\n")).toBe("   Compiling bar\n");
  });

  it("replays carriage returns, backspaces and colours as a terminal shows them", async () => {
    expect(await renderTerminalText("\u001b[32mok\u001b[0m start\n 10%\r 50%\r100%\ndone \u001b]0;title\u0007x\r\nab\bc\n")).toBe(
      "ok start\n100%\ndone x\nac\n",
    );
    expect(await renderTerminalText("downloading 100%\rdone")).toBe("doneloading 100%");
  });

  it("follows cursor-up redraws back to the rows they rewrite", async () => {
    const raw = "head\nL1: waiting\nL2: waiting\n\u001b[2A\u001b[2K\rL1: done\r\u001b[2B\u001b[1A\u001b[2K\rL2: done\r\u001b[1Btail\n";
    const rendered = await renderTerminal(raw);
    expect(rendered.lines).toEqual(["head", "L1: done", "L2: done", "tail"]);
    // Input line 3 (the redraws and "tail") started on the row of "tail".
    expect(rendered.lineStarts).toEqual([0, 1, 2, 3]);
  });

  it("shows what ESC[2J cleared with the sequences, joins a line the terminal wrapped, keeps what was under a full-screen program", async () => {
    // What the erase hid stays, with the sequences that hid it (test/model/hidden-text.test.ts).
    expect(await renderTerminalText("gone\n\u001b[2J\u001b[Hkept\n")).toBe("gone\n\\e[2J\\e[Hkept\n");
    const long = "x".repeat(700);
    expect(await renderTerminalText(`${long}\nshort\n`)).toBe(`${long}\nshort\n`);
    expect(await renderTerminalText("before\n\u001b[?1049hfull screen\u001b[?1049lafter\n")).toBe("before\nafter\n");
  });

  it("writes format controls as escapes (U+202E, zero-width and tag characters), as the CLI shows them; an emoji's joiner stays", async () => {
    const raw = "invoice_\u202Egnp.exe\nok\u200Bok\u{E0041}\n\u{1F469}\u200D\u{1F4BB}\n";
    expect(await renderTerminalText(raw)).toBe("invoice_\\u{202e}gnp.exe\nok\\u{200b}ok\\u{e0041}\n\u{1F469}\u200D\u{1F4BB}\n");
    const { entry, readLines } = memoryChannel(raw);
    const view = await channelModelView(readLines, entry, 2000);
    expect(view.text).toContain("invoice_\\u{202e}gnp.exe");
    expect(view.text).not.toContain("\u202E");
  });

  it("trims trailing blanks and trailing empty lines, and returns nothing for nothing", async () => {
    expect(await renderTerminalText("a   \n\n\n")).toBe("a\n");
    expect(await renderTerminalText("")).toBe("");
    expect(await renderTerminalText("\u001b[31m\u001b[0m")).toBe("");
  });

  it("keeps far more lines than its screen and scrollback hold, in order, and maps input lines to rendered lines", async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i + 1}:${"-".repeat(i % 50)}`);
    const progress = lines.map((l) => `working…\r\u001b[K${l}\n`).join("");
    const rendered = await renderTerminal(progress);
    expect(rendered.lines).toEqual(lines);
    expect(rendered.lineStarts.length).toBe(5000);
    expect(rendered.lineStarts[4321]).toBe(4321);
    expect(rendered.sourceLines[4321]).toBe(4321);
  });
});

describe("fixtures of real-shaped noisy output", () => {
  const figures: { name: string; raw: number; view: number }[] = [];

  for (const name of NAMES) {
    it(`${name}: the model view is exactly the lines written by hand`, async () => {
      const raw = readFileSync(join(FIXTURES, `${name}.raw`));
      const expected = readFileSync(join(FIXTURES, `${name}.expected`), "utf8");
      const { entry, readLines } = memoryChannel(raw);
      const view = await channelModelView(readLines, entry, 4000);
      expect(view.text).toBe(expected);
      expect(inOrder(view.text.split("\n"), expected.split("\n"))).toBe(true);
      expect(view.text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f\u009b]/);
      figures.push({ name, raw: raw.length, view: Buffer.byteLength(view.text) });
    });
  }

  it("over the set, the view is at most 30% of the raw bytes", () => {
    expect(figures).toHaveLength(NAMES.length);
    const raw = figures.reduce((n, f) => n + f.raw, 0);
    const view = figures.reduce((n, f) => n + f.view, 0);
    const table = [...figures, { name: "total", raw, view }].map(
      (f) => `${f.name.padEnd(7)} ${String(f.raw).padStart(7)} → ${String(f.view).padStart(5)} (${((100 * f.view) / f.raw).toFixed(1)}%)`,
    );
    console.log(`model view of the fixtures (raw bytes → view bytes):\n${table.join("\n")}`);
    expect(view / raw).toBeLessThanOrEqual(0.3);
  });
});
