import { describe, expect, it } from "vitest";
import { cutToWidth, displayWidth, fitWidths, formatRows, wrapToWidth } from "../../src/cli/common.js";

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

  it("never cuts a whole column (where a runner runs the project): others give up characters, or the table goes a row at a time", () => {
    const wide = [{ ...runners[0]!, where: "http://127.0.0.1:4317, on build-host, project root /srv/checkouts/app" }];
    const cut = formatRows(wide, columns, { width: 100 });
    expect(cut).toContain("…");
    expect(cut).not.toContain("/srv/checkouts/app");
    const kept = formatRows(wide, columns, { width: 100, whole: ["where"] });
    const [header, row] = kept.trimEnd().split("\n");
    expect(row).toContain("http://127.0.0.1:4317, on build-host, project root /srv/checkouts/app");
    expect(row).toMatch(/^build-1 +local +claiming,.*…/);
    expect(row!.indexOf("http://")).toBe(header!.indexOf("where"));
    for (const line of kept.split("\n")) expect(displayWidth(line)).toBeLessThanOrEqual(100);
    // Too narrow to keep it whole beside the others' floors: a row at a time, the value whole across its lines.
    const records = formatRows(wide, columns, { width: 60, whole: ["where"] });
    expect(records.replace(/\n {9}/g, " ")).toContain("where    http://127.0.0.1:4317, on build-host, project root /srv/checkouts/app");
  });

  it("is whole without a width (a pipe, a file), and when it fits", () => {
    const whole = formatRows(runners, columns);
    expect(whole).toContain("claiming, resting 2s after 2 failed starts, attached 4s ago");
    expect(whole).not.toContain("…");
    expect(formatRows(runners, columns, { width: 200 })).toBe(whole);
  });

  it("never cuts a column below its header or 6 characters: a table that cannot fit is given a row at a time, a line a column", () => {
    const text = formatRows(runners, columns, { width: 30 });
    expect(text).toBe(
      [
        "name     build-1",
        "backend  local",
        "state    claiming, resting 2s",
        "         after 2 failed",
        "         starts, attached 4s",
        "         ago",
        "where    /srv/build",
        "",
        "name     gpu",
        "backend  ssh",
        "state    idle, attached 1m ago",
        "where    gpu.lab.example:22",
        "",
      ].join("\n"),
    );
    for (const line of text.split("\n")) expect(displayWidth(line)).toBeLessThanOrEqual(30);
    // Nothing is cut: each value is whole, across its lines. Empty cells are left out.
    expect(formatRows([{ name: "a", backend: "", state: "x", where: "" }], columns, { width: 20 })).toBe("name   a\nstate  x\n");
    // A word longer than the line is cut where the line ends; a wide character is never split.
    expect(wrapToWidth("abcdefghij klm", 4)).toEqual(["abcd", "efgh", "ij", "klm"]);
    expect(wrapToWidth("修复构建脚本", 5)).toEqual(["修复", "构建", "脚本"]);
    // Never inside a character: an emoji (with its skin tone), a letter with its accent; no line wider than asked.
    expect(wrapToWidth("aaaaaaaaaaa😀", 12)).toEqual(["aaaaaaaaaaa", "😀"]);
    expect(wrapToWidth("abcde\u0301", 4)).toEqual(["abcd", "e\u0301"]);
    expect(wrapToWidth("abcd👍🏽", 5)).toEqual(["abcd", "👍🏽"]);
    expect(wrapToWidth("修复", 1)).toEqual(["修", "复"]);
    for (const text of ["aaaaaaaaaaa😀", "a b  c   d", "  x", "修复构建 脚本", "e\u0301e\u0301e\u0301e\u0301e\u0301"]) {
      for (const width of [1, 2, 3, 5, 12]) {
        const lines = wrapToWidth(text, width);
        for (const line of lines)
          expect(displayWidth(line), `${JSON.stringify(text)} at ${width}: ${JSON.stringify(lines)}`).toBeLessThanOrEqual(Math.max(width, 2));
        expect(lines.join("").replaceAll(" ", "")).toBe(text.replaceAll(" ", ""));
      }
    }
    // Labels as wide as the columns that hold something; a row with nothing is no block.
    expect(
      formatRows(
        [
          { a: "", b: "", long_label: "" },
          { a: "x", b: "", long_label: "" },
        ],
        ["a", "b", "long_label"],
        { width: 10 },
      ),
    ).toBe("a  x\n");
  });

  it("never cuts an emoji in half", () => {
    const text = formatRows([{ run: "r1", title: `abcde${"😀".repeat(10)}` }], ["run", "title"], { width: 14 });
    expect(text.split("\n")[1]).toBe("r1   abcde😀…");
    expect(formatRows([{ run: "r1", title: `abcdef${"😀".repeat(10)}` }], ["run", "title"], { width: 14 }).split("\n")[1]).toBe("r1   abcdef😀…");
  });

  it("counts the columns a terminal gives a cell, not UTF-16 units: wide characters two, combining marks none, so later cells stay in line", () => {
    expect(displayWidth("構建")).toBe(4);
    expect(displayWidth("e\u0301te\u0301")).toBe(3);
    expect(displayWidth("😀")).toBe(2);
    expect(displayWidth("👍🏽")).toBe(2);
    expect(displayWidth("❤\uFE0F")).toBe(1);
    // Korean decomposed into jamo (as macOS file names are) draws as its syllables.
    expect(displayWidth("한국".normalize("NFD"))).toBe(4);
    const rows = [
      { run: "run-1", title: "修复构建脚本", state: "done" },
      { run: "run-2", title: "re\u0301sume\u0301 build", state: "failed" },
      { run: "run-3", title: "plain", state: "running" },
    ];
    const lines = formatRows(rows, ["run", "title", "state"]).trimEnd().split("\n");
    // Where each row's state starts on the screen: the same column for every row.
    const at = (line: string, cell: string) => displayWidth(line.slice(0, line.indexOf(cell)));
    expect(at(lines[1]!, "done")).toBe(at(lines[0]!, "state"));
    expect(at(lines[2]!, "failed")).toBe(at(lines[0]!, "state"));
    expect(at(lines[3]!, "running")).toBe(at(lines[0]!, "state"));
    // Narrowed, a wide title is cut on a character and no line is wider than the terminal.
    const narrow = formatRows(rows, ["run", "title", "state"], { width: 22 }).trimEnd().split("\n");
    for (const line of narrow) expect(displayWidth(line)).toBeLessThanOrEqual(22);
    expect(narrow[1]).toContain("修复…");
    expect(cutToWidth("修复构建", 4)).toBe("修…");
    expect(cutToWidth("修复构建", 8)).toBe("修复构建");
  });

  it("shrinks the widest first", () => {
    expect(fitWidths([10, 40, 30], [4, 8, 8], 70)).toEqual([10, 28, 28]);
    expect(fitWidths([10, 40, 30], [4, 8, 8], 200)).toEqual([10, 40, 30]);
    expect(fitWidths([10, 40, 30], [4, 8, 8], 0)).toEqual([4, 8, 8]);
  });
});
