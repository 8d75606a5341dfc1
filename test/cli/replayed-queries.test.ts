import { describe, expect, it } from "vitest";
import { isCsiQuery, ReplayedQueries } from "../../src/cli/commands/replayed-queries.js";

const replayed = (...chunks: string[]) => {
  const q = new ReplayedQueries();
  return chunks.map((c) => q.push(Buffer.from(c, "latin1"), true).toString("latin1")).join("");
};

describe("the terminal queries taken out of replayed output (spool attach)", () => {
  it("takes out CPR, DA, DECRQM, XTVERSION, kitty, window reports, DECRQSS, XTGETTCAP and OSC colour and clipboard queries", () => {
    const queries = [
      "\u001b[6n",
      "\u001b[5n",
      "\u001b[?6n",
      "\u001b[c",
      "\u001b[0c",
      "\u001b[>c",
      "\u001b[=c",
      "\u001b[?2004$p",
      "\u001b[>q",
      "\u001b[?u",
      "\u001b[14t",
      "\u001b[18t",
      "\u001bP$qm\u001b\\",
      "\u001bP+q544e\u001b\\",
      "\u001b]11;?\u0007",
      "\u001b]4;1;?\u001b\\",
      "\u001b]52;c;?\u0007",
    ];
    expect(replayed(`a${queries.join("b")}z`)).toBe(`a${"b".repeat(queries.length - 1)}z`);
  });

  it("leaves every other sequence as it is: colours, moves, modes, titles, a title push, sixel", () => {
    const kept =
      "\u001b[31mred\u001b[0m\u001b[2A\u001b[?1000h\u001b]2;title\u0007\u001b[22;0t\u001b=\u001bPq#0;2;0;0;0~\u001b\\\u001b]8;;https://x\u0007l\u001b]8;;\u0007";
    expect(replayed(kept)).toBe(kept);
    expect(isCsiQuery("\u001b[2J")).toBe(false);
    expect(isCsiQuery("\u001b[6n")).toBe(true);
  });

  it("takes out a query cut between chunks, and keeps an escape cut between them", () => {
    expect(replayed("x\u001b", "[6", "ny")).toBe("xy");
    expect(replayed("x\u001b]11", ";?\u001b", "\\y")).toBe("xy");
    expect(replayed("x\u001b[3", "1mred")).toBe("x\u001b[31mred");
  });

  it("passes live output untouched, but for the rest of a sequence the replay cut", () => {
    const q = new ReplayedQueries();
    expect(q.push(Buffer.from("old\u001b[6"), true).toString()).toBe("old");
    expect(q.push(Buffer.from("nnew\u001b[6n"), false).toString()).toBe("new\u001b[6n");
  });

  it("gives a long string back whole: no question is that long", () => {
    const long = `\u001b]52;c;${"A".repeat(10_000)}\u0007`;
    expect(replayed(long)).toBe(long);
  });
});
