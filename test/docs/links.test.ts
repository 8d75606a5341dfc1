import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** README.md, SPEC.md, PLUGINS.md and every document under docs/, as repository paths. */
function documents(): string[] {
  const under = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? under(`${dir}/${e.name}`) : e.name.endsWith(".md") ? [`${dir}/${e.name}`] : [],
    );
  return ["README.md", "SPEC.md", "PLUGINS.md", ...under("docs")].sort();
}

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const LINK = /!?\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;

/** The lines outside fenced code blocks. */
function prose(text: string): string[] {
  let fenced = false;
  return text.split("\n").filter((line) => {
    if (FENCE.test(line)) fenced = !fenced;
    else if (!fenced) return true;
    return false;
  });
}

/** GitHub's anchor for a heading: lower case, code marks and punctuation dropped, spaces to hyphens. */
function slug(title: string): string {
  return title
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[^\p{L}\p{N}_\- ]/gu, "")
    .replace(/ /g, "-");
}

/** Each heading's anchor, a repeated one with GitHub's -1, -2. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(text)) {
    const m = HEADING.exec(line);
    if (!m) continue;
    const base = slug(m[2]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The relative links (outside code) of `files` (path → text) that name no file, or no heading of the file they name. */
function brokenLinks(files: ReadonlyMap<string, string>, exists: (path: string) => boolean): string[] {
  const broken: string[] = [];
  for (const [file, text] of files) {
    for (const line of prose(text)) {
      const spans = [...line.matchAll(/`[^`]*`/g)].map((m) => [m.index!, m.index! + m[0].length] as const);
      for (const m of line.matchAll(LINK)) {
        const at = m.index! + m[0].indexOf("](");
        if (spans.some(([a, b]) => a <= at && at < b)) continue;
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) continue;
        const [path = "", anchor] = target.split("#");
        const resolved = path ? normalize(join(dirname(file), path)).replace(/\\/g, "/") : file;
        if (!files.has(resolved) && !exists(resolved)) {
          broken.push(`${file}: ${target} (no ${resolved})`);
          continue;
        }
        if (anchor === undefined) continue;
        const heads = files.get(resolved);
        if (heads === undefined || !anchors(heads).has(anchor)) broken.push(`${file}: ${target} (no heading #${anchor} in ${resolved})`);
      }
    }
  }
  return broken;
}

describe("the documents' links", () => {
  it("every relative link in README.md, SPEC.md, PLUGINS.md and docs/ names a file there is, and a heading the file has", () => {
    const files = new Map(documents().map((file) => [file, readFileSync(join(root, file), "utf8")]));
    expect(files.size).toBeGreaterThan(10);
    expect(brokenLinks(files, (path) => existsSync(join(root, path)))).toEqual([]);
  });

  it("finds a link to a missing file, a missing heading, and a repeated heading's first anchor taken for its second", () => {
    const files = new Map([
      ["README.md", "# A\n\n## Tools\n\n## Tools\n\nsee [b](docs/b.md#tools-1), [c](docs/c.md), [x](#nowhere), [y](#tools-1)\n"],
      ["docs/b.md", "# B\n\n### Tools\n\n```sh\n# Tools\n```\n\n[back](../README.md#tools) `[not a link](gone.md)`\n"],
    ]);
    expect(brokenLinks(files, () => false)).toEqual([
      "README.md: docs/b.md#tools-1 (no heading #tools-1 in docs/b.md)",
      "README.md: docs/c.md (no docs/c.md)",
      "README.md: #nowhere (no heading #nowhere in README.md)",
    ]);
  });

  it("README.md stays a front door (≤ 300 lines) and SPEC.md an index (≤ 400 lines)", () => {
    expect(readFileSync(join(root, "README.md"), "utf8").split("\n").length - 1).toBeLessThanOrEqual(300);
    expect(readFileSync(join(root, "SPEC.md"), "utf8").split("\n").length - 1).toBeLessThanOrEqual(400);
  });
});
