import { describe, expect, it } from "vitest";
import { fitWidths, formatRows } from "../../src/cli/common.js";

const runners = [
  { name: "build-1", backend: "local", state: "claiming, resting 2s after 2 failed starts, attached 4s ago", where: "/srv/build" },
  { name: "gpu", backend: "ssh", state: "idle, attached 1m ago", where: "gpu.lab.example:22" },
];
const columns = ["name", "backend", "state", "where"];

describe("a table in a terminal narrower than it", () => {
  it("fits the terminal: the widest column is cut with …, no line is wider, and the other cells are whole", () => {
    const text = formatRows(runners, columns, { width: 60 });
    const lines = text.trimEnd().split("\n");
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(60);
    expect(lines[1]).toContain("build-1");
    expect(lines[1]).toContain("/srv/build");
    expect(lines[1]).toMatch(/claiming, resting.*…/);
    expect(lines[2]).toContain("gpu.lab.example:22");
    // The columns still line up: each row's `where` starts where the header's does.
    const at = lines[0]!.indexOf("where");
    expect(lines[1]!.indexOf("/srv/build")).toBe(at);
    expect(lines[2]!.indexOf("gpu.lab.example:22")).toBe(at);
  });

  it("is whole without a width (a pipe, a file), and when it fits", () => {
    const whole = formatRows(runners, columns);
    expect(whole).toContain("claiming, resting 2s after 2 failed starts, attached 4s ago");
    expect(whole).not.toContain("…");
    expect(formatRows(runners, columns, { width: 200 })).toBe(whole);
  });

  it("never cuts a column below its header or 6 characters: a very narrow terminal wraps instead", () => {
    const lines = formatRows(runners, columns, { width: 10 }).trimEnd().split("\n");
    expect(lines).toEqual(["name    backend  state   where", "build…  local    claim…  /srv/…", "gpu     ssh      idle,…  gpu.l…"]);
  });

  it("never cuts an emoji in half", () => {
    const text = formatRows([{ run: "r1", title: `abcde${"😀".repeat(10)}` }], ["run", "title"], { width: 14 });
    expect(text.split("\n")[1]).toBe("r1   abcde😀…");
    expect(formatRows([{ run: "r1", title: `abcdef${"😀".repeat(10)}` }], ["run", "title"], { width: 14 }).split("\n")[1]).toBe("r1   abcdef😀…");
  });

  it("shrinks the widest first", () => {
    expect(fitWidths([10, 40, 30], [4, 8, 8], 70)).toEqual([10, 28, 28]);
    expect(fitWidths([10, 40, 30], [4, 8, 8], 200)).toEqual([10, 40, 30]);
    expect(fitWidths([10, 40, 30], [4, 8, 8], 0)).toEqual([4, 8, 8]);
  });
});
