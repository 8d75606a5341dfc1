import { describe, expect, it } from "vitest";
import { keyBytes, newestLines } from "../../src/mcp/spool/text.js";

describe("spool mcp's progress lines and keys", () => {
  it("newestLines: escape sequences gone, a carriage return keeps what follows it, blank lines skipped, the last three kept", () => {
    expect(newestLines("a\nb\n\u001b[31mred\u001b[0m\n\n50%\r100%\nlast")).toBe("red\n100%\nlast");
    expect(newestLines("\u001b]0;title\u0007x\u0000y\n")).toBe("xy");
    expect(newestLines("")).toBe("");
    const long = newestLines("z".repeat(1000));
    expect(long.length).toBe(401);
    expect(long.startsWith("…")).toBe(true);
  });

  it("keyBytes: named keys, Ctrl and a letter, and null for anything else", () => {
    expect(keyBytes("Enter")).toBe("\r");
    expect(keyBytes("Up")).toBe("\u001b[A");
    expect(keyBytes("C-c")).toBe("\u0003");
    expect(keyBytes("C-D")).toBe("\u0004");
    expect(keyBytes("C-[")).toBe("\u001b");
    expect(keyBytes("C-?")).toBe("\u007f");
    expect(keyBytes("C-1")).toBeNull();
    expect(keyBytes("Hyper")).toBeNull();
    expect(keyBytes("enter")).toBeNull();
  });
});
