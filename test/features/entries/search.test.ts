import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../../src/client/spool-client.js";
import { credentialClients } from "../../helpers/credential-clients.js";
import { describeWithInfra } from "../../helpers/infra.js";
import { freshDatabase } from "../../helpers/postgres.js";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { startTestServer, type TestServer, tempDir } from "../../helpers/server.js";

/** Line n (1-based) of the big output: ERROR on three known lines, "ok" elsewhere. */
const ERRORS = [1234, 150_000, 299_990];
const LINES = 300_000;
/**
 * The search budget the servers are given (limits.searchBudgetMs, its default): a guard here, as RE2 never spends it
 * on a pattern. At 1 s a loaded machine's PostgreSQL did not hand the worker its first page in time (two CI runs side
 * by side), and the search ended without an answer (LIMIT_EXCEEDED) instead of paging.
 */
const BUDGET_MS = 5000;
const lineText = (n: number) => (ERRORS.includes(n) ? `ERROR: step ${n} failed` : `ok step ${n}`);

/** Streams `text` into a channel in chunks of `size` bytes, cut anywhere (mid-line, mid-character). */
async function streamText(c: SpoolClient, run: string, path: string, channel: number, text: string, size = 64 * 1024, firstSeq = 1): Promise<number> {
  const bytes = Buffer.from(text);
  let seq = firstSeq;
  for (let at = 0; at < bytes.length; at += size) {
    await c.call("stream", { run, path, channel, chunk: bytes.subarray(at, at + size).toString("base64"), encoding: "base64", seq: seq++ });
  }
  return seq;
}

/** The suite over one store: the server's SQLite file, or a PostgreSQL database of its own. */
function searchSuite(postgres: boolean) {
  let ts: TestServer;
  let database: Awaited<ReturnType<typeof freshDatabase>> | null = null;
  let c: SpoolClient;
  let out: string;
  const clients = credentialClients(() => ts.server.url);
  beforeAll(async () => {
    const home = tempDir();
    writeFileSync(join(home, "config.json"), JSON.stringify({ limits: { searchBudgetMs: BUDGET_MS } }));
    if (postgres) database = await freshDatabase();
    ts = await startTestServer({ home, ...(database ? { database: database.url } : {}) });
    c = await ts.clientIn("alpha");
    const made = await proposeAndAccept(c, c, "big", "build", { runner: "self" });
    out = made.stdout;
    const text = Array.from({ length: LINES }, (_, i) => `${lineText(i + 1)}\n`).join("");
    await streamText(c, "big", made.path, 1, text);
    await c.call("stream/completed", { run: "big", path: made.path, exit_code: 1 });
  }, 60_000);
  afterAll(async () => {
    clients.closeAll();
    await ts.stop();
    await database?.drop();
  });

  it("finds exactly the three ERROR lines of 300,000, with their numbers and context, in order", async () => {
    const found = await c.call("entry/search", { run: "big", path: out, pattern: "ERROR", before: 1, after: 2 });
    expect(found).toMatchObject({ path: out, status: 500, truncated: false, lines: LINES });
    expect(found.nextLine).toBeUndefined();
    expect(found.matches).toEqual(
      ERRORS.map((n) => ({
        line: n,
        text: lineText(n),
        path: out,
        before: [lineText(n - 1)],
        after: [lineText(n + 1), lineText(n + 2)].filter((_, i) => n + 1 + i <= LINES),
      })),
    );
  });

  it("limit and nextLine page through the matches", async () => {
    const first = await c.call("entry/search", { run: "big", path: out, pattern: "ERROR", limit: 2 });
    expect(first.matches.map((m) => m.line)).toEqual(ERRORS.slice(0, 2));
    expect(first).toMatchObject({ truncated: true, nextLine: ERRORS[1]! + 1 });
    const rest = await c.call("entry/search", { run: "big", path: out, pattern: "ERROR", limit: 2, fromLine: first.nextLine });
    expect(rest.matches.map((m) => m.line)).toEqual([ERRORS[2]]);
    expect(rest.truncated).toBe(false);
  });

  it("plain text is literal; ignoreCase and regex are asked for", async () => {
    // Each search read to its end as a reader does: one that reached its time budget on a loaded machine says so
    // (truncated, nextLine) and the next call goes on from there.
    const all = async (params: { pattern: string; ignoreCase?: boolean; regex?: boolean }) => {
      const matches: { line: number }[] = [];
      let fromLine: number | undefined;
      for (;;) {
        const found = await c.call("entry/search", { run: "big", path: out, ...params, ...(fromLine ? { fromLine } : {}) });
        matches.push(...found.matches);
        if (!found.truncated) return matches;
        expect(found.nextLine).toBeGreaterThan(fromLine ?? 1);
        fromLine = found.nextLine;
      }
    };
    expect(await all({ pattern: "error:" })).toEqual([]);
    expect((await all({ pattern: "error:", ignoreCase: true })).map((m) => m.line)).toEqual(ERRORS);
    expect((await c.call("entry/search", { run: "big", path: out, pattern: "step 1.34 ", limit: 5 })).matches).toEqual([]);
    expect(await all({ pattern: "step 1.34 " })).toEqual([]);
    expect((await all({ pattern: "^ERROR: step 1\\d+ failed$", regex: true })).map((m) => m.line)).toEqual([1234, 150_000]);
  });

  it("a log path searches the command's output channels merged, each match naming its channel", async () => {
    const made = await proposeAndAccept(c, c, "both", "mixed", { runner: "self" });
    await c.call("stream", { run: "both", path: made.path, channel: 1, chunk: "compiling a\ncompiling b\n", seq: 1 });
    await c.call("stream", { run: "both", path: made.path, channel: 2, chunk: "warning: b is old\n", seq: 1 });
    await c.call("stream", { run: "both", path: made.path, channel: 1, chunk: "warning: done with warnings\n", seq: 2 });
    const found = await c.call("entry/search", { run: "both", path: made.path, pattern: "warning", before: 1 });
    // Still running: what is stored so far is searched.
    expect(found.status).toBe(102);
    expect(found.matches).toEqual([
      { line: 3, text: "warning: b is old", path: made.stderr, before: ["compiling b"], after: [] },
      { line: 4, text: "warning: done with warnings", path: made.stdout, before: ["warning: b is old"], after: [] },
    ]);
  });

  it("a pattern JavaScript's engine backtracks on for ever is answered at once: RE2 matches in linear time", async () => {
    const made = await proposeAndAccept(c, c, "evil", "evil", { runner: "self" });
    await c.call("stream", { run: "evil", path: made.path, channel: 1, chunk: `${"a".repeat(40)}!\n${"a".repeat(40)}\n`, seq: 1 });
    const started = performance.now();
    const answer = await c.call("entry/search", { run: "evil", path: made.stdout, pattern: "^(a+)+$", regex: true });
    // Backtracking, the first line alone took 2^40 steps (the whole budget, and LIMIT_EXCEEDED); here it is one pass.
    expect(performance.now() - started).toBeLessThan(BUDGET_MS / 2);
    expect(answer.matches.map((m) => m.line)).toEqual([2]);
    expect(answer.timedOut).toBeFalsy();
  });

  it("RE2 syntax: backreferences and lookaround are a clear error, nothing searched", async () => {
    for (const pattern of ["(a)\\1", "(?<=a)b", "a(?!b)"]) {
      await expect(c.call("entry/search", { run: "big", path: out, pattern, regex: true })).rejects.toMatchObject({
        code: -32602,
        message: expect.stringContaining("RE2 syntax"),
      });
    }
  });

  it("bad input gets a clear error", async () => {
    await expect(c.call("entry/search", { run: "big", path: out, pattern: "(", regex: true })).rejects.toMatchObject({ code: -32602 });
    await expect(c.call("entry/search", { run: "big", path: out, pattern: "" })).rejects.toMatchObject({ code: -32602 });
    await expect(c.call("entry/search", { run: "big", path: out, pattern: "x", limit: 0 })).rejects.toMatchObject({ code: -32602 });
    await expect(c.call("entry/search", { run: "big", path: out, pattern: "x", before: 21 })).rejects.toMatchObject({ code: -32602 });
    await expect(c.call("entry/search", { run: "big", path: out, pattern: "x", grep: true } as never)).rejects.toMatchObject({ code: -32602 });
    await expect(c.call("entry/search", { run: "big", path: "sh://turn_9/none_1", pattern: "x" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(c.call("entry/search", { run: "nope", path: out, pattern: "x" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });

  it("a viewer may search; a credential of another project may not", async () => {
    const admin = c;
    const { token: viewerToken } = await admin.call("token/create", { name: "watcher", role: "viewer" });
    const viewer = await clients.as(viewerToken, "alpha");
    expect((await viewer.call("entry/search", { run: "big", path: out, pattern: "ERROR" })).matches).toHaveLength(3);
    const { token: betaToken } = await admin.call("token/create", { name: "beta-reader", role: "person", projects: ["beta"] });
    await ts.clientIn("beta");
    const outsider = await clients.as(betaToken, null);
    await expect(outsider.initialize("alpha")).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    await outsider.initialize("beta");
    await expect(outsider.call("entry/search", { run: "big", path: out, pattern: "ERROR" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });
}

describe("entry/search (SQLite)", () => searchSuite(false));
describeWithInfra("postgres", "entry/search (PostgreSQL)", () => searchSuite(true));
