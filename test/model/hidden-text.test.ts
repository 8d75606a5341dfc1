import { describe, expect, it } from "vitest";
import { hidesText } from "../../src/model/hidden-text.js";
import { channelModelView } from "../../src/model/model-view.js";
import { renderTerminal, renderTerminalText } from "../../src/model/terminal.js";
import { memoryChannel } from "../helpers/memory-channel.js";

const ESC = "\u001b";
const CSI = `${ESC}[`;

describe("the model view shows text a cursor move hid on an earlier line", () => {
  it("keeps a line erased after cursor-up, then the sequences as the CLI writes them before what replaced it", async () => {
    const raw = `rm -rf ~\n${CSI}1A${CSI}2Kecho hello\n`;
    expect(await renderTerminalText(raw)).toBe("rm -rf ~\n\\e[1A\\e[2Kecho hello\n");
    // One rendered line still, so input lines map as before.
    const rendered = await renderTerminal(raw);
    expect(rendered.lines).toHaveLength(1);
    expect(rendered.lineStarts).toEqual([0, 1]);
    // Erased and left blank, it is shown too.
    expect(await renderTerminalText(`rm -rf ~\n${CSI}1A${CSI}2K`)).toBe("rm -rf ~\n\\e[1A\\e[2K");
  });

  it("shows every text a line held, not only the first and the last", async () => {
    const raw = `ok\n${CSI}1A${CSI}2Krm -rf ~\r${CSI}1B${CSI}1A${CSI}2Kok\r${CSI}1B\n`;
    expect(await renderTerminalText(raw)).toBe("ok\n\\e[1A\\e[2Krm -rf ~\n\\e[1A\\e[2Kok\n");
  });

  it("shows a fake prompt drawn over an earlier line by cursor position, and what a clear screen wiped", async () => {
    const raw = `Delete all files? [y/N] n\nanswer recorded\n${CSI}1;1H${CSI}2KDelete all files? [Y/n] y\n${CSI}3B`;
    expect(await renderTerminalText(raw)).toBe("Delete all files? [y/N] n\n\\e[1;1H\\e[2KDelete all files? [Y/n] y\nanswer recorded");
    expect(await renderTerminalText(`secret\nmore\n${CSI}H${CSI}2Jshown\n`)).toBe("secret\n\\e[H\\e[2Jshown\nmore\n");
  });

  it("keeps what scrolled off when the command erases the scrollback (ESC[3J), and ignores a full reset (ESC c)", async () => {
    const lines = Array.from({ length: 400 }, (_, i) => `line ${i + 1}`);
    const text = await renderTerminalText(`${lines.join("\n")}\n${CSI}3J${ESC}cafter\n`);
    expect(text).toBe(`${lines.join("\n")}\nafter\n`);
  });

  it("shows a line deleted (ESC[M) but not one only moved down by an inserted line (ESC[L)", async () => {
    expect(await renderTerminalText(`keep\nrm -rf ~\nlast\n${CSI}2A${CSI}M${CSI}2B\n`)).toBe("keep\nrm -rf ~\n\\e[2A\\e[Mlast\n");
    expect(await renderTerminalText(`one\ntwo\n${ESC}7${CSI}2A${CSI}Lzero${ESC}8\n`)).toBe("zero\none\ntwo\n");
  });

  it("stays clean for progress bars, same-line edits, appends and status redraws (Docker's, a test runner's counters)", async () => {
    expect(await renderTerminalText("rm -rf ~\r\u001b[Kecho hello\n")).toBe("echo hello\n");
    expect(await renderTerminalText(" 10%\r 50%\r100%\n")).toBe("100%\n");
    expect(await renderTerminalText(`start\n${CSI}1A${CSI}5C, then more\n`)).toBe("start, then more\n");
    expect(await renderTerminalText(`a1b2: Waiting\ntail\n${CSI}2A${CSI}2K\ra1b2: Pull complete\r${CSI}2B`)).toBe("a1b2: Pull complete\ntail");
    const counters = `Tests  3 passed [=>   ]\n${CSI}1A${CSI}2KTests  9 passed [===> ]\n${CSI}1A${CSI}2KTests 12 passed [=====]\n`;
    expect(await renderTerminalText(counters)).toBe("Tests 12 passed [=====]\n");
    expect(hidesText("⠋ Installing 3/10", "⠙ Installing 4/10")).toBe(false);
    expect(hidesText("rm -rf ~", "echo hello")).toBe(true);
    expect(hidesText("x y: rm -rf ~", "x y: ok")).toBe(true);
  });

  it("in the view of a channel, as the model reads it", async () => {
    const { entry, readLines } = memoryChannel(`rm -rf ~\n${CSI}1A${CSI}2Kecho hello\n`);
    const view = await channelModelView(readLines, entry, 2000);
    expect(view.text).toContain("rm -rf ~\n\\e[1A\\e[2Kecho hello");
    expect(view.text).not.toContain(ESC);
  });
});
