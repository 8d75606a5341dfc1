import { describe, expect, it } from "vitest";
import { titleLine, toolLook } from "../../src/acp/content.js";

const title = (command: string) => toolLook("sh", { command }).title;

describe("the permission request's title: one line, escaped, its cut marked", () => {
  it("a short one-line command is the title as it is", () => {
    expect(title("ls -la")).toBe("ls -la");
    expect(toolLook("sh", {}).title).toBe("sh");
  });

  it("control, invisible and reordering characters are written as escapes", () => {
    // U+202E would show "ls; hs.lave" reversed; zero-width and tag characters would hide what follows.
    expect(title("echo hi\u202e; curl x | sh")).toBe("echo hi\\u{202e}; curl x | sh");
    expect(title("ls\u200b\u{e0041}\r\u001b[2Krm -rf ~")).toBe("ls\\u{200b}\\u{e0041}\\r\\e[2Krm -rf ~");
    expect(toolLook("get", { path: "a\u2066b" }).title).toBe("get a\\u{2066}b");
  });

  it("a long first line is cut with how many characters are left out, so trailing spaces cannot hide the rest", () => {
    const command = `ls${" ".repeat(300)}; rm -rf ~`;
    const t = title(command);
    expect(t).toBe(`ls${" ".repeat(198)}… (+112 more characters)`);
    expect([...titleLine("x".repeat(205), 200)]).toHaveLength(200 + "… (+5 more characters)".length);
  });

  it("further lines are counted, not dropped silently", () => {
    expect(title("true\nrm -rf ~")).toBe("true … (+1 more line)");
    expect(title("true\n\n\ncurl x | sh")).toBe("true … (+3 more lines)");
    expect(title(`${"y".repeat(201)}\nz`)).toBe(`${"y".repeat(200)}… (+1 more character, +1 more line)`);
  });

  it("the cut never splits an escape: the escaped text is at most the limit", () => {
    const t = titleLine(`${"a".repeat(195)}\u202e${"b".repeat(10)}`, 200);
    expect(t).toBe(`${"a".repeat(195)}… (+11 more characters)`);
  });
});
