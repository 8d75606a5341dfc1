import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { DEFAULT_FAILURE_PATTERNS, failureRegex, looksLikeFailure } from "../../src/model/failures.js";
import { channelModelView } from "../../src/model/model-view.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { createRepositories, type Repositories } from "../../src/store/repositories.js";
import type { EntryRow } from "../../src/store/schema.js";
import { openStore, type Store } from "../../src/store/sqlite/database.js";
import { memoryChannel } from "../helpers/memory-channel.js";
import { tempDir } from "../helpers/server.js";

/** A build log of `total` lines: compiler progress noise, one error at line `failAt` (1-based). */
function buildLog(total: number, failAt: number[]): string {
  const out: string[] = [];
  for (let i = 1; i <= total; i++) {
    if (failAt.includes(i)) out.push(`\u001b[1m\u001b[31merror\u001b[0m: src/module_${i}.c:42: undefined reference to \`init_${i}'`);
    else out.push(`[${String(Math.floor((i * 100) / total)).padStart(3)}%] \u001b[32mBuilding C object\u001b[0m CMakeFiles/app.dir/src/module_${i}.c.o`);
  }
  return `${out.join("\n")}\n`;
}

const NOTE =
  /\[… (\d+) lines \(about (\d+) bytes\) of (\S+) left out \((\d+) lines in all\); read them with the get tool: \{"path": "\S+", "line": (\d+), "limit": 200\} …\]/;

describe("the model view of a large channel", () => {
  it("a small output that fits is shown whole; one over the budget is cut to a head and a tail with the note", async () => {
    const small = memoryChannel("one\ntwo\nthree\n");
    expect((await channelModelView(small.readLines, small.entry, 4000)).text).toBe("one\ntwo\nthree\n");
    const lines = Array.from({ length: 400 }, (_, i) => `row ${i + 1}`);
    const big = memoryChannel(`${lines.join("\n")}\n`);
    const view = await channelModelView(big.readLines, big.entry, 100);
    expect(view.text.startsWith("row 1\nrow 2\n")).toBe(true);
    expect(view.text.endsWith("row 399\nrow 400\n")).toBe(true);
    const note = NOTE.exec(view.text)!;
    expect(note).not.toBeNull();
    const shownHead = view.text.split("\n").indexOf(note[0]);
    expect(Number(note[5])).toBe(shownHead + 1); // reading from the first line left out
    expect(Number(note[1])).toBe(view.omittedLines);
    expect(Number(note[4])).toBe(400);
    expect(view.text.length).toBeLessThan(400 + 400);
  });

  it("renders only a head and a tail window of a large channel, never the whole of it", async () => {
    // 8 MB of progress-bar noise without a failure; the view reads two windows and the middle for the failure search only.
    const line = (i: number) => `${"=".repeat(i % 60)}>\r\u001b[Kstep ${i} done ${"·".repeat(40)}`;
    const raw = `${Array.from({ length: 80_000 }, (_, i) => line(i + 1)).join("\n")}\n`;
    const channel = memoryChannel(raw);
    const started = performance.now();
    const view = await channelModelView(channel.readLines, channel.entry, 4000, { failurePatterns: [] });
    const elapsed = performance.now() - started;
    expect(channel.stats.bytesRead).toBeLessThan(3 * 256 * 1024 + 64 * 1024); // the head window, the tail window (a second try at most), nothing else
    expect(view.text).toMatch(/^step 1 done/);
    expect(view.text).toContain("step 80000 done");
    expect(view.text).not.toContain("\u001b");
    expect(view.text).not.toContain("\r");
    expect(view.text).not.toContain("===>");
    const note = NOTE.exec(view.text)!;
    const headShown = view.text.split("\n").indexOf(note[0]);
    expect(Number(note[5])).toBe(headShown + 1);
    // The note is two lines (where to read the rest, and how to search it); the text ends with a newline.
    const tailShown = view.text.split("\n").length - headShown - 3;
    expect(Number(note[1])).toBe(80_000 - headShown - tailShown);
    expect(view.text.length).toBeLessThan(16_000 + 1_000);
    expect(elapsed).toBeLessThan(20_000);
  });

  it("keeps the failure-looking lines of the omitted middle, each with its line number (first and last when there are many)", async () => {
    const many = Array.from({ length: 30 }, (_, i) => 10_000 + i * 500);
    const channel = memoryChannel(buildLog(40_000, [7_777, ...many]));
    const view = await channelModelView(channel.readLines, channel.entry, 4000);
    expect(view.failures.map((f) => f.line)).toEqual([7_777, ...many.slice(0, 9), ...many.slice(-10)]);
    expect(view.text).toContain("[line 7777] error: src/module_7777.c:42: undefined reference to `init_7777'");
    expect(view.text).toContain("11 more between them not shown");
    expect(view.text.length).toBeLessThan(16_000 + 1_000);
  });

  it("cuts long failure lines and keeps them within a quarter of the budget, counting the ones it drops", async () => {
    const lines = Array.from({ length: 6000 }, (_, i) => (i >= 2000 && i < 2020 ? `error: ${"x".repeat(600)} ${i + 1}` : `ok ${i + 1}`));
    const channel = memoryChannel(`${lines.join("\n")}\n`);
    const view = await channelModelView(channel.readLines, channel.entry, 1000);
    const kept = view.text.split("\n").filter((l) => l.startsWith("[line "));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(20);
    expect(kept.every((l) => l.length <= 300 + "[line 2001] ".length && l.endsWith("…"))).toBe(true);
    expect(kept.join("\n").length).toBeLessThanOrEqual(1000);
    expect(view.text).toContain(`${20 - kept.length} more between them not shown`);
    expect(view.text.length).toBeLessThan(4000 + 1000);
  });

  it("bounds the search of the middle, names the lines it did not search, and searches the part next to the tail", async () => {
    const total = 60_000;
    const channel = memoryChannel(buildLog(total, [20_000, 30_000, 59_000]));
    const view = await channelModelView(channel.readLines, channel.entry, 1000, { scanBytes: 1024 * 1024 });
    // 1 MiB: the half next to the head reaches ~line 7,000+, the half next to the tail starts ~line 52,000.
    expect(view.failures.map((f) => f.line)).toEqual([59_000]);
    const unscanned = /\[… lines (\d+)-(\d+) were not searched for failures \(the search reads at most 1048576 bytes\) …\]/.exec(view.text)!;
    expect(unscanned).not.toBeNull();
    expect(Number(unscanned[1])).toBeLessThan(20_000);
    expect(Number(unscanned[2])).toBeGreaterThan(30_000);
    expect(Number(unscanned[2])).toBeLessThan(59_000);
    expect(channel.stats.bytesRead).toBeLessThan(1.5 * 1024 * 1024 + 4 * 64 * 1024);
  });

  it("takes its failure patterns from the caller: a custom list finds other lines, an empty one searches nothing", async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => (i === 1500 ? "step 1501 TIMEOUT after 30s" : `step ${i + 1} ok`));
    const channel = memoryChannel(`${lines.join("\n")}\n`);
    const custom = await channelModelView(channel.readLines, channel.entry, 200, { failurePatterns: ["\\btimeout\\b"] });
    expect(custom.failures).toEqual([{ line: 1501, text: "step 1501 TIMEOUT after 30s" }]);
    expect(custom.text).toContain("[line 1501] step 1501 TIMEOUT after 30s");
    const none = await channelModelView(channel.readLines, channel.entry, 200, { failurePatterns: [] });
    expect(none.failures).toEqual([]);
    expect((await channelModelView(channel.readLines, channel.entry, 200)).failures).toEqual([]);
  });

  it("the default patterns: failures yes, their look-alikes no", () => {
    const regex = failureRegex(DEFAULT_FAILURE_PATTERNS)!;
    const yes = [
      'error: could not compile `app` (bin "app") due to 2 previous errors',
      "src/main.c:3:5: error: expected ';'",
      "npm ERR! code ELIFECYCLE",
      "TypeError: Cannot read properties of undefined (reading 'x')",
      'Exception in thread "main" java.lang.NullPointerException',
      " FAIL  spec/parse.test.ts > parses nested arrays",
      "test result: FAILED. 10 passed; 2 failed",
      "thread 'main' panicked at src/main.rs:2:5:",
      "Traceback (most recent call last):",
      "fatal: not a git repository",
      "Segmentation fault (core dumped)",
      "make: *** [Makefile:12: all] Error 2",
      "Process exited with code 137",
      "subprocess.CalledProcessError: Command 'x' returned non-zero exit status 1.",
    ];
    const no = ["Compiling errno v0.3.9", "-Werror is on", "src/error.rs | 4 ++--", "Tests  12 passed, 0 failed", "found 0 errors", "exit code 0", "all good"];
    expect(yes.filter((l) => !looksLikeFailure(l, regex))).toEqual([]);
    expect(no.filter((l) => looksLikeFailure(l, regex))).toEqual([]);
  });
});

describe("through the store: a 50,000-line build log failing at line 25,000", () => {
  let store: Store;
  let repos: Repositories;
  let entry: EntryRow;
  const log = buildLog(50_000, [25_000]);
  beforeAll(async () => {
    store = openStore(join(tempDir(), "spool.db"));
    await migrateToLatest(store, MIGRATIONS_DIR);
    repos = createRepositories(store);
    const project = await repos.projects.createProject("p", "/tmp");
    const now = Date.now();
    const run = await repos.runs.insertRun({
      project_id: project.id,
      alias: "r",
      model: null,
      mode: "act",
      status: RUN.running,
      created_at: now,
      updated_at: now,
    });
    const created = await repos.entries.insertEntry({
      run_id: run.id,
      path: "sh://turn_1/make_1",
      scheme: "sh",
      turn: 1,
      status: ENTRY.streaming,
      streamed: 1,
      created_at: now,
      updated_at: now,
    });
    const bytes = Buffer.from(log);
    for (let off = 0; off < bytes.length; off += 60_000) await repos.chunks.append(created.id, bytes.subarray(off, off + 60_000), undefined, 102);
    entry = (await repos.entries.findEntryById(created.id))!;
  });
  afterAll(() => store.close());

  it("shows the failure to the model with its line number, and that line number reads it back with get", async () => {
    expect(entry.newlines).toBe(50_000);
    const view = await channelModelView(repos.chunks.readLines, entry, 4000);
    expect(view.failures).toEqual([{ line: 25_000, text: "error: src/module_25000.c:42: undefined reference to `init_25000'" }]);
    expect(view.text).toContain("[line 25000] error: src/module_25000.c:42: undefined reference to `init_25000'");
    expect(view.text).toMatch(NOTE);
    expect(view.text).toContain("[… 1 line of the left-out part looks like a failure");
    expect(view.text.endsWith("module_50000.c.o\n")).toBe(true);
    const back = await repos.chunks.readLines(entry.id, 25_000 - 1, 1, 4096);
    expect(back.data.toString()).toContain("undefined reference to `init_25000'");
  });
});

describe("configuration", () => {
  it("failurePatterns from config.json replace the defaults; a bad regular expression is refused at start", () => {
    expect(loadConfig({ home: tempDir() }, {}).agent.failurePatterns).toEqual([...DEFAULT_FAILURE_PATTERNS]);
    const home = tempDir();
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, "config.json"), JSON.stringify({ failurePatterns: ["\\bTIMEOUT\\b"] }));
    expect(loadConfig({ home }, {}).agent.failurePatterns).toEqual(["\\bTIMEOUT\\b"]);
    writeFileSync(join(home, "config.json"), JSON.stringify({ failurePatterns: ["(unclosed"] }));
    expect(() => loadConfig({ home }, {})).toThrow(
      /config\.json: "failurePatterns\[0\]" must be a regular expression \(.*Unterminated group\), got "\(unclosed"/,
    );
  });
});
