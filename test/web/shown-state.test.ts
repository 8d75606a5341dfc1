// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and CLI JSON
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { describeWithBrowser, useBrowser } from "../helpers/browser.js";
import { spawnCli } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/**
 * Every client tells the same state (src/protocol/shown-state.ts): a run with a proposal waiting for a decision
 * is `waiting` on the web page (Chromium), in `spool runs` and in `spool show`, also when a client (an MCP agent,
 * here proposal/create) made the proposal on a run with no model loop; `spool runs` and `spool runners` say
 * what their --json says.
 */

/** A table as printRows (src/cli/common.ts) writes it: each row's cells by the header's column starts. */
function table(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trimEnd().split("\n");
  const names = header!.split(/\s{2,}/);
  const starts = names.map((name) => header!.indexOf(name));
  return lines.map((line) => Object.fromEntries(names.map((name, i) => [name, line.slice(starts[i], starts[i + 1] ?? line.length).trim()])));
}

describeWithBrowser("one shown state on every client", () => {
  const web = useBrowser();
  let dir: string;
  let client: SpoolClient;
  const agents: RunnerClient[] = [];
  const env = () => ({ SPOOL_SERVER: web.ts.server.url, SPOOL_TOKEN_FILE: web.ts.server.config.tokenFile, SPOOL_HOME: web.ts.home, SPOOL_PROJECT: "" });
  const cli = async (args: string[]) => {
    const run = spawnCli(args, env(), { cwd: dir });
    expect(await run.exit, `spool ${args.join(" ")}: ${run.stderr()}`).toBe(0);
    return run.stdout();
  };

  beforeAll(async () => {
    dir = join(tempDir("spool-shown-"), "shown");
    mkdirSync(join(dir, ".git"), { recursive: true });
    client = await web.ts.client();
    await client.initialize(undefined, { root: dir });
  }, 60_000);
  afterAll(async () => {
    for (const agent of agents) await agent.stop();
  });

  it("a run with a client's proposal and no model loop is waiting on the web page, in spool runs and spool show; idle once decided", async () => {
    await client.call("run/create", { alias: "byhand" });
    const { path } = await client.call("proposal/create", { run: "byhand", tool: "sh", command: "echo proposed-by-a-client" });
    const { run } = await client.call("run/get", { run: "byhand" });
    expect(run).toMatchObject({ model: null, status: 200, pending: 1 });

    const project = (await client.call("project/list", {})).projects.find((p: any) => p.root === dir)!.name;
    const page = await web.open(project);
    await page.waitForFunction(() => document.querySelector('.runs [data-run="byhand"] .status')?.textContent === "waiting");
    await page.evaluate((name) => (location.hash = `#/${encodeURIComponent(name)}/byhand`), project);
    await page.waitForFunction(() => document.querySelector("[data-run-status]")?.textContent === "waiting");

    const runs = JSON.parse(await cli(["runs", "--json"]));
    expect(runs.find((r: any) => r.alias === "byhand")).toMatchObject({ status: 200, pending: 1 });
    expect(table(await cli(["runs"])).find((r) => r.run === "byhand")).toMatchObject({ state: "waiting" });
    expect((await cli(["show", "byhand"])).split("\n")[0]).toMatch(/^byhand {2}waiting {2}act/);

    // Decided: nothing waits; a run fed by hand is idle, everywhere.
    await client.call("run/resolve", { run: "byhand", path, decision: "reject", reason: "not now" });
    await page.waitForFunction(() => document.querySelector('.runs [data-run="byhand"] .status')?.textContent === "idle");
    expect(table(await cli(["runs"])).find((r) => r.run === "byhand")).toMatchObject({ state: "idle" });
  }, 90_000);

  it("spool runners says what runner/list --json says: default yes only for the default, the sandbox modes each gives", async () => {
    const second = new RunnerClient({
      connect: () => SpoolClient.connect(web.ts.server.url, { token: web.ts.server.token }),
      project: (await client.call("project/list", {})).projects.find((p: any) => p.root === dir)!.name,
      name: "second",
      backend: new LocalBackend(),
      log: createLogger("silent"),
    });
    agents.push(second);
    await second.start();
    const check = async () => {
      const listed = JSON.parse(await cli(["runners", "--json"]));
      const rows = table(await cli(["runners"]));
      expect(rows.map((r) => r.name).sort()).toEqual(listed.map((r: any) => r.name).sort());
      for (const r of listed) {
        const row = rows.find((x) => x.name === r.name)!;
        const noDefault = !listed.some((x: any) => x.default);
        expect(row.default, r.name).toBe(r.default ? "yes" : r.embedded && noDefault ? "implied" : "no");
        const modes = r.sandbox.modes ?? (r.sandbox.readOnly ? ["read-only", "full"] : ["full"]);
        expect(row.sandbox, r.name).toBe(modes.join(", "));
        expect(row.network, r.name).toBe(r.sandbox.network ?? "not said");
        // Who attached it (its name is that principal's) and where it runs: the server and the machine (issue 54).
        expect(row["attached by"], r.name).toBe(r.attachedBy === null ? "the server" : `${r.attachedBy.role} "${r.attachedBy.name}"`);
        expect(row.where, r.name).toBe(`${r.server}, on ${r.host}`);
        expect(r.server, r.name).toMatch(/^\S+:\d+$/);
      }
      return listed;
    };
    // No default: the embedded runner takes plain accepts, and is not called the default.
    const before = await check();
    expect(before.find((r: any) => r.name === "local")).toMatchObject({ default: false, embedded: true });
    await second.stop();
    await eventually(async () => !(await client.call("runner/list", {})).runners.some((r: any) => r.name === "second"), 10_000, "second to leave");
    const boss = new RunnerClient({
      connect: () => SpoolClient.connect(web.ts.server.url, { token: web.ts.server.token }),
      project: (await client.call("project/list", {})).projects.find((p: any) => p.root === dir)!.name,
      name: "boss",
      default: true,
      backend: new LocalBackend(),
      log: createLogger("silent"),
    });
    agents.push(boss);
    await boss.start();
    const after = await check();
    expect(after.find((r: any) => r.name === "boss")).toMatchObject({ default: true });
  }, 90_000);

  it("the page: a run's own proposals first and others marked, runners' running counts live, ages that tick, labelled badges", async () => {
    const project = (await client.call("project/list", {})).projects.find((p: any) => p.root === dir)!.name;
    await client.call("run/create", { alias: "older" });
    await client.call("run/create", { alias: "mine" });
    const theirs = await client.call("proposal/create", { run: "older", tool: "sh", command: "rm -rf build" });
    const own = await client.call("proposal/create", { run: "mine", tool: "sh", command: "echo mine" });
    const page = await web.open(project);
    await page.evaluate((name) => (location.hash = `#/${encodeURIComponent(name)}/mine`), project);
    await page.waitForFunction(() => document.querySelector("[data-run-status]") !== null);
    await page.waitForFunction((path) => document.querySelector(`.proposal[data-path="${path}"][data-run="older"].other-run`) !== null, {}, theirs.path);
    // On run "mine", its own proposal is the first card, though the other run's is older; the other says whose it is.
    const cards = await page.$$eval(".cards .proposal", (els) =>
      els.map((el) => ({
        run: (el as HTMLElement).dataset.run,
        other: el.classList.contains("other-run"),
        note: !(el.querySelector(".other-run-note") as HTMLElement).hidden,
      })),
    );
    expect(cards).toEqual([
      { run: "mine", other: false, note: false },
      { run: "older", other: true, note: true },
    ]);
    expect(await page.$eval(".proposals h2", (el) => el.textContent)).toBe("Waiting for a decision: 1 in this run, 1 in other runs");
    // Badges say what they count.
    const badge = await page.$eval(`.projects [data-project="${project}"] .badge.waiting`, (el) => el.textContent);
    expect(badge).toBe("2 waiting");
    // Ages tick: the sidebar's "Ns" of a run changes within a few seconds, not after ten.
    const first = await page.$eval('.runs [data-run="mine"] time[data-since]', (el) => el.textContent);
    await page.waitForFunction((was) => document.querySelector('.runs [data-run="mine"] time[data-since]')?.textContent !== was, { timeout: 4_000 }, first);
    await client.call("run/resolve", { run: "older", path: theirs.path, decision: "reject" });

    // The project's overview: the runner's "N running" follows a command that starts and ends, with no reload.
    await page.evaluate((name) => (location.hash = `#/${encodeURIComponent(name)}`), project);
    const resolved = await client.call("run/resolve", { run: "mine", path: own.path, decision: "accept" });
    const runner = resolved.runner!;
    const line = (want: string) =>
      page.waitForFunction(
        (r, w) =>
          [...document.querySelectorAll(".runners li")].some(
            (li) => (li.querySelector("strong")?.textContent ?? "") === r && (li.textContent ?? "").endsWith(w),
          ),
        { timeout: 20_000 },
        runner,
        want,
      );
    expect(runner).toBeTruthy();
    const sleeper = await client.call("proposal/create", { run: "mine", tool: "sh", command: "sleep 30" });
    const started = await client.call("run/resolve", { run: "mine", path: sleeper.path, decision: "accept" });
    expect(started.runner).toBe(runner);
    await line("· 1 running");
    await client.call("stream/cancel", { run: "mine", path: sleeper.path });
    await line("· 0 running");
    // Who attached it and where it runs, as runner/list says (issue 54).
    const listed = (await client.call("runner/list", {})).runners.find((r: any) => r.name === runner)!;
    const text = await page.evaluate(
      (r) => [...document.querySelectorAll(".runners li")].find((li) => (li.querySelector("strong")?.textContent ?? "") === r)?.textContent ?? "",
      runner,
    );
    expect(text).toContain(
      ` · attached by ${listed.attachedBy ? `${listed.attachedBy.role} "${listed.attachedBy.name}"` : "the server"} · ${listed.server}, on ${listed.host} · `,
    );
    // Its state as runner/list says it (claiming, draining, gone): drained, the page says so once it reads the runners again.
    const state = (want: RegExp) =>
      page.waitForFunction(
        (r, w) =>
          new RegExp(w).test(
            [...document.querySelectorAll(".runners li")].find((li) => (li.querySelector("strong")?.textContent ?? "") === r)?.querySelector("span")
              ?.textContent ?? "",
          ),
        { timeout: 20_000 },
        runner,
        want.source,
      );
    await state(/^claiming/);
    await client.call("runner/drain", { name: runner });
    await page.reload();
    await state(/^draining$/);
    expect((await client.call("runner/list", {})).runners.find((r: any) => r.name === runner)?.state).toBe("draining");
    await client.call("runner/drain", { name: runner, drain: false });
  }, 90_000);

  it("the page: signed out, the server's `commands` are code, not backticks; a finished command's empty channel is one line; 1 line; a Commands column", async () => {
    const out = await web.blank();
    await out.goto(web.ts.server.url.replace(/^ws/, "http"));
    await out.waitForSelector(".signed-out .reason");
    expect(await out.$eval(".signed-out .reason", (el) => el.textContent)).not.toContain("`");
    expect(await out.$$eval(".signed-out .reason code", (els) => els.map((el) => el.textContent))).toContain("spool open");

    const project = (await client.call("project/list", {})).projects.find((p: any) => p.root === dir)!.name;
    await client.call("run/create", { alias: "quiet" });
    const { path } = await client.call("proposal/create", { run: "quiet", tool: "sh", command: "echo one" });
    const resolved = await client.call("run/resolve", { run: "quiet", path, decision: "accept" });
    // Both channels ended before the page opens (under load stderr can end after stdout; the empty pane is drawn for an ended channel).
    for (const channel of resolved.channels)
      await eventually(
        async () => (await client.call("entry/get", { run: "quiet", path: channel.path })).status !== 102,
        20_000,
        `channel ${channel.channel} to end`,
      );
    const page = await web.open(project);
    await page.evaluate((name, p) => (location.hash = `#/${encodeURIComponent(name)}/quiet/${encodeURIComponent(p)}`), project, path);
    await page.waitForSelector('.pane.empty[data-pane="2"]');
    expect(await page.$eval('.pane[data-pane="1"]', (el) => el.classList.contains("empty"))).toBe(false);
    await page.waitForFunction(() => document.querySelector('[data-head="1"]')?.textContent?.includes("· 1 line "));
    expect(await page.$eval(".producers-col h2", (el) => el.textContent)).toBe("Commands");
  }, 90_000);
});
