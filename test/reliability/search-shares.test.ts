import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { eventually, tempDir } from "../helpers/server.js";

/*
 * entry/search's pool shared fairly, over a real `spool serve`: a viewer with dozens of searches that each take the
 * whole budget (a regular expression that backtracks its step budget away on each of 100,000 lines before the
 * linear-time engine reads the line) holds one worker at most, and its excess is refused; another project's plain
 * search is answered beside it, in under a second, before any of the viewer's ends.
 */

const BUDGET_MS = 4_000;

describe("entry/search's pool, one principal's share", () => {
  let serve: ServeProcess;
  const clients: SpoolClient[] = [];
  let viewer: SpoolClient;
  let person: SpoolClient;
  let evil: string;
  let plain: string;

  const connect = async (token: string, project: string, root?: string) => {
    const c = await SpoolClient.connect(serve.url, { token });
    clients.push(c);
    await c.initialize(project, root ? { root } : {});
    return c;
  };

  beforeAll(async () => {
    const home = tempDir("spool-search-shares-");
    const base = tempDir("spool-search-shares-root-");
    for (const p of ["alpha", "beta"]) mkdirSync(join(base, p, ".git"), { recursive: true });
    writeFileSync(join(home, "config.json"), JSON.stringify({ limits: { searchBudgetMs: BUDGET_MS } }));
    serve = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    const token = readFileSync(join(home, "token"), "utf8").trim();
    const alpha = await connect(token, "alpha", join(base, "alpha"));
    const beta = await connect(token, "beta", join(base, "beta"));
    const a = await proposeAndAccept(alpha, alpha, "evil", "evil", { runner: "self" });
    // 100,000 lines a backtracking pattern takes its step budget on (10,000 each) before the linear-time engine reads them.
    const evilChunk = `${"a".repeat(40)}!\n`.repeat(20_000);
    for (let seq = 1; seq <= 5; seq++) await alpha.call("stream", { run: "evil", path: a.path, channel: 1, chunk: evilChunk, seq });
    evil = a.stdout;
    const b = await proposeAndAccept(beta, beta, "build", "build", { runner: "self" });
    const text = Array.from({ length: 5000 }, (_, i) => (i === 4321 ? "ERROR: it broke\n" : `ok step ${i}\n`)).join("");
    await beta.call("stream", { run: "build", path: b.path, channel: 1, chunk: text, seq: 1 });
    plain = b.stdout;
    viewer = await connect((await alpha.call("token/create", { name: "nosy", role: "viewer", projects: ["alpha"] })).token, "alpha");
    person = await connect((await beta.call("token/create", { name: "builder", role: "person", projects: ["beta"] })).token, "beta");
    // Both workers started (a search each, at once): the pool's start is not what is measured.
    await Promise.all([
      viewer.call("entry/search", { run: "evil", path: evil, pattern: "a" }),
      person.call("entry/search", { run: "build", path: plain, pattern: "ok" }),
    ]);
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    await serve?.stop();
  });

  it("66 searches that backtrack leave another project's plain search under a second; past its share the viewer is refused", async () => {
    // The plain search alone, for the machine's pace (under load a search is slower whatever the pool does).
    const alone = performance.now();
    await person.call("entry/search", { run: "build", path: plain, pattern: "ERROR" });
    const baseline = performance.now() - alone;
    let refused = 0;
    /** When the first of the viewer's searches that ran ended (cut at the budget, or answered). */
    let viewerEnded: number | null = null;
    const outcomes = Array.from({ length: 66 }, () =>
      viewer.call("entry/search", { run: "evil", path: evil, pattern: "^(a+)+$", regex: true }).then(
        () => {
          viewerEnded ??= performance.now();
          return "answered";
        },
        (error: { data?: { code?: string; limit?: string; budgetMs?: number } }) => {
          if (error.data?.limit !== "maxSearchesPerPrincipal") {
            viewerEnded ??= performance.now();
            return error.data?.budgetMs ? "cut" : String(error);
          }
          refused++;
          return "refused";
        },
      ),
    );
    // The viewer's searches are under way (its first holds a worker for the whole budget): its excess was refused.
    await eventually(() => refused >= 66 - 8, 20_000, "the viewer's excess searches refused");
    const started = performance.now();
    const found = await person.call("entry/search", { run: "build", path: plain, pattern: "ERROR" });
    const answered = performance.now();
    expect(found.matches.map((m) => m.line)).toEqual([4322]);
    // Served beside the viewer's running search, not after it: answered before any of the viewer's ended, and in
    // under a second (on a busy machine, three times what the search took alone).
    expect(viewerEnded).toBeNull();
    expect(answered - started).toBeLessThan(Math.max(1_000, 3 * baseline));
    const settled = await Promise.all(outcomes);
    expect(viewerEnded! - started).toBeGreaterThan(answered - started);
    expect(settled.filter((o) => o === "refused").length).toBeGreaterThanOrEqual(66 - 8);
    expect(settled.filter((o) => o === "cut").length).toBeGreaterThan(0);
    expect(settled.every((o) => o === "refused" || o === "cut" || o === "answered")).toBe(true);
  }, 120_000);
});
