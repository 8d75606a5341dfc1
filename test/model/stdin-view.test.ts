import { describe, expect, it } from "vitest";
import { channelModelView } from "../../src/model/model-view.js";
import { renderTerminal, renderTerminalText } from "../../src/model/terminal.js";
import { memoryChannel } from "../helpers/memory-channel.js";

/** A channel of a producer: 0 is its stdin (what was typed), 1 its output. */
function channel(data: string, number: number) {
  const c = memoryChannel(data, `sh://turn_1/python3_${number}`);
  c.entry.channel = number;
  return c;
}

describe("the model's view of what was typed (stdin, channel 0)", () => {
  it("shows lines typed on a terminal (Enter sends \\r) one under the other, not each over the one before", async () => {
    const typed = "print(6*7)\rexit()\r";
    const stdin = channel(typed, 0);
    expect((await channelModelView(stdin.readLines, stdin.entry, 4000)).text).toBe("print(6*7)\nexit()\n");
    // Output stays what a terminal finally shows: there a carriage return goes back over the line.
    const stdout = channel(typed, 1);
    expect((await channelModelView(stdout.readLines, stdout.entry, 4000)).text).toBe("exit()6*7)");
  });

  it("takes \\r\\n and \\n as one line end each, and keeps a last line typed without Enter", async () => {
    const stdin = channel("ls -l\r\npwd\nwhoami\recho half", 0);
    expect((await channelModelView(stdin.readLines, stdin.entry, 4000)).text).toBe("ls -l\npwd\nwhoami\necho half");
    expect(await renderTerminalText("a\r\r\nb\r", { input: true })).toBe("a\n\nb\n");
    // Not typed input: the carriage returns go back over the line.
    expect(await renderTerminalText("a\rb\r")).toBe("b");
  });

  it("erases what a backspace typed (DEL, or ^H) erased, as a line editor does", async () => {
    const stdin = channel("prinnt\u007f\u007ft(6*7)\rexit(\b()\r", 0);
    expect((await channelModelView(stdin.readLines, stdin.entry, 4000)).text).toBe("print(6*7)\nexit()\n");
    // At the start of a line there is nothing to erase.
    expect(await renderTerminalText("\u007fls\r", { input: true })).toBe("ls\n");
  });

  it("keeps counting input lines at \\n, so line numbers still point at the stored lines", async () => {
    const rendering = await renderTerminal("one\rtwo\nthree\n", { input: true });
    expect(rendering.lines).toEqual(["one", "two", "three"]);
    // Stored line 1 ("one\rtwo") starts at rendered line 0, stored line 2 ("three") at rendered line 2.
    expect(rendering.lineStarts).toEqual([0, 2]);
    expect(rendering.sourceLines).toEqual([0, 0, 1]);
  });

  it("cuts a long typed session to a head and a tail whose note names the stored lines to read", async () => {
    const typed = Array.from({ length: 300 }, (_, i) => `command ${i + 1}\r`).join("");
    const stdin = channel(`${typed}\n${typed}\n`, 0);
    const view = await channelModelView(stdin.readLines, stdin.entry, 100, { failurePatterns: [] });
    expect(view.text.startsWith("command 1\ncommand 2\n")).toBe(true);
    expect(view.text.endsWith("command 299\ncommand 300\n")).toBe(true);
    expect(view.text).not.toContain("\r");
    // Two stored lines (each of 300 commands typed); the second is the one left out.
    expect(view.text).toMatch(
      /of sh:\/\/turn_1\/python3_0 left out \(2 lines in all\); read them with the get tool: \{"path": "sh:\/\/turn_1\/python3_0", "line": 2,/,
    );
  });
});
