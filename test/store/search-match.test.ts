import { describe, expect, it } from "vitest";
import { bothCases, LineMatcher, regexError, type SearchMatch, type SearchQuery } from "../../src/store/search/search-match.js";

const query = (over: Partial<SearchQuery> = {}): SearchQuery => ({
  pattern: "x",
  regex: false,
  ignoreCase: false,
  before: 0,
  after: 0,
  limit: 1000,
  fromLine: 1,
  maxBytes: 1 << 20,
  ...over,
});

/** What grep would answer: every line holding the pattern, with its context. */
function naive(text: string, q: SearchQuery): Omit<SearchMatch, "entryId">[] {
  const lines = text.split("\n");
  if (text.endsWith("\n")) lines.pop();
  const re = q.regex || q.ignoreCase ? new RegExp(q.regex ? q.pattern : q.pattern.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&"), q.ignoreCase ? "i" : "") : null;
  const out: Omit<SearchMatch, "entryId">[] = [];
  for (let i = q.fromLine - 1; i < lines.length && out.length < q.limit; i++) {
    const line = lines[i]!;
    if (re ? re.test(line) : line.includes(q.pattern)) {
      // A line comes back without a carriage return before its newline.
      const bare = (l: string) => (l.endsWith("\r") ? l.slice(0, -1) : l);
      out.push({
        line: i + 1,
        text: bare(line),
        before: lines.slice(Math.max(0, i - q.before), i).map(bare),
        after: lines.slice(i + 1, i + 1 + q.after).map(bare),
      });
    }
  }
  return out;
}

/** Feeds `text` cut into pieces of `size` bytes and collects the answer, as the worker does (progress after each piece). */
function run(text: string, q: SearchQuery, size: number) {
  const matcher = new LineMatcher(q, 1);
  const data = Buffer.from(text);
  const found: SearchMatch[] = [];
  for (let at = 0; at < data.length; at += size) {
    if (matcher.feed(at % 2 ? 7 : 9, data.subarray(at, at + size))) break;
    found.push(...matcher.progress().matches);
  }
  const end = matcher.end();
  found.push(...end.matches);
  return { matches: found.map(({ entryId: _, ...m }) => m), next: end.nextLine };
}

describe("the line matcher", () => {
  const words = ["x", "ab", "XX", "é", "", "x x", "\r", "aXb"];
  let seed = 7;
  const random = (n: number) => {
    // xorshift32: every bit of the state varies.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const text = Array.from({ length: 400 }, () => Array.from({ length: random(4) }, () => words[random(words.length)]).join(" ")).join("\n");

  it("answers what grep answers whatever the chunks' cuts, with context, plain, ignoreCase and regex", () => {
    for (const q of [
      query(),
      query({ before: 2, after: 3 }),
      query({ pattern: "x", ignoreCase: true, after: 1 }),
      query({ pattern: "^a.b|x\\s", regex: true, before: 1 }),
      query({ pattern: "é", fromLine: 100, before: 3, after: 2 }),
    ]) {
      const expected = naive(text, q);
      expect(expected.length, q.pattern).toBeGreaterThan(0);
      for (const size of [1, 2, 3, 7, 64, 100_000]) expect(run(text, q, size).matches, `${q.pattern} in pieces of ${size}`).toEqual(expected);
    }
  });

  it("stops at the limit and says the line to go on from", () => {
    const all = naive(text, query());
    for (const size of [5, 1000]) {
      const { matches, next } = run(text, query({ limit: 3, after: 2 }), size);
      expect(matches.map((m) => m.line)).toEqual(all.slice(0, 3).map((m) => m.line));
      expect(next).toBe(all[2]!.line + 1);
    }
  });

  it("stops at the byte cap at a whole match", () => {
    const { matches, next } = run("x1\nx2\nx3\n", query({ maxBytes: 4 }), 2);
    expect(matches.map((m) => m.text)).toEqual(["x1", "x2"]);
    expect(next).toBe(3);
  });

  it("a line without its newline at the end is a line; a line across many chunks is found once", () => {
    expect(run("a\nbx", query(), 1).matches).toEqual([{ line: 2, text: "bx", before: [], after: [] }]);
    const long = `${"a".repeat(5000)}x${"b".repeat(5000)}\nx\n`;
    expect(run(long, query(), 333).matches.map((m) => m.line)).toEqual([1, 2]);
  });
});

describe("patterns run in linear time, without case too", () => {
  it("bothCases spells each letter in both cases, keeping escapes, classes' ranges and group names", () => {
    expect(bothCases("ab")).toBe("[aA][bB]");
    expect(bothCases("\\d+x")).toBe("\\d+[xX]");
    expect(bothCases("[a-f0-9_]")).toBe("[a-fA-F0-9_]");
    expect(bothCases("[^a-z]")).toBe("[^a-zA-Z]");
    expect(bothCases("(?<word>err)\\W")).toBe("(?<word>[eE][rR][rR])\\W");
    expect(bothCases("(?:é)")).toBe("(?:[éÉ])");
  });

  it("a case-insensitive search answers what JavaScript's i flag does", () => {
    const text = "Error: one\nERROR two\nwarning: Three\nnothing\nÉté\n";
    for (const pattern of ["error", "e[r]+or", "[a-z]+: t", "^[^a-z]+$", "ét", "warn(ing)?"]) {
      const q = query({ pattern, regex: true, ignoreCase: true });
      expect(run(text, q, 7).matches, pattern).toEqual(naive(text, q));
    }
  });

  it("a pattern that backtracks for ever on JavaScript's engine alone answers at once, with case or without", () => {
    const text = `${"a".repeat(60)}!\n${"a".repeat(60)}\n`;
    for (const ignoreCase of [false, true]) {
      const started = performance.now();
      const matches = run(text, query({ pattern: "^(a+)+$", regex: true, ignoreCase }), 1 << 16);
      // Milliseconds here; JavaScript's engine would take longer than the universe has. 5 s leaves a busy machine room.
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(matches.matches.map((m) => m.line)).toEqual([2]);
    }
  });

  it("blocks where the pattern backtracks are tried line by line, with the same answer", () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => (i % 1000 === 999 ? "a".repeat(40) : i % 500 === 0 ? `${"a".repeat(40)}!` : `line ${i} of a log`));
    const text = `${lines.join("\n")}\n`;
    const { matches } = run(text, query({ pattern: "^(a+)+$", regex: true, limit: 1000 }), 64 * 1024);
    expect(matches.map((m) => m.line)).toEqual(lines.flatMap((l, i) => (l === "a".repeat(40) ? [i + 1] : [])));
  });

  it("RE2 takes no backreference or lookaround: the pattern is refused, with why", () => {
    expect(regexError("(a)\\1")).toMatch(/escape/);
    expect(regexError("(?<=a)b")).toMatch(/named capture|lookbehind/);
    expect(regexError("a(?!b)")).toMatch(/perl operator|repetition|missing|invalid/);
    expect(regexError("^(a+)+$")).toBeNull();
    expect(regexError("[")).not.toBeNull();
  });
});
