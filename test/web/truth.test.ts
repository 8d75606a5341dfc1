import { spawnSync } from "node:child_process";
import type { Page } from "puppeteer-core";
import { expect, it } from "vitest";
import { RUN } from "../../src/protocol/status.js";
import { card, describeWithBrowser, text, useBrowser } from "../helpers/browser.js";
import { eventually } from "../helpers/server.js";

/** A REPL to type into: python3, or where it is missing a shell loop that reads lines the same way. */
const HAS_PYTHON = spawnSync("python3", ["--version"]).status === 0;
const REPL = HAS_PYTHON
  ? { command: "python3 -q", prompt: ">>>", answer: "42" }
  : { command: `while printf '>>> '; IFS= read -r line; do [ "$line" = "exit()" ] && exit 0; echo "read: $line"; done`, prompt: ">>>", answer: "read: print" };

/** Installed before the page's script: this browser's clock runs an hour ahead of the server's. */
const CLOCK_AHEAD = `
const realNow = Date.now.bind(Date);
Date.now = () => realNow() + 3_600_000;`;

describeWithBrowser("the web view tells what the server knows", () => {
  // A turn waits up to a minute for the command it accepted: meanwhile its run stays at 202.
  const web = useBrowser({ model: true, server: { agent: { toolYieldMs: 60_000 } } });
  const open = (project: string, before?: string) => web.open(project, before ? { before } : {});
  const badges = (page: Page, project: string) =>
    page.$eval(`.projects [data-project="${project}"]`, (el) => ({
      waiting: el.querySelector(".badge.waiting")?.textContent ?? null,
      open: el.querySelector(".badge.open")?.textContent ?? null,
    }));
  const waitBadges = (page: Page, project: string, want: { waiting: string | null; open: string | null }) =>
    page.waitForFunction(
      (name, w) => {
        const el = document.querySelector(`.projects [data-project="${name}"]`);
        return (
          el !== null &&
          (el.querySelector(".badge.waiting")?.textContent ?? null) === w.waiting &&
          (el.querySelector(".badge.open")?.textContent ?? null) === w.open
        );
      },
      {},
      project,
      want,
    );
  /** The visible rows of a channel's terminal, one string a row, blank rows left out. */
  const rowsOf = (page: Page, channel: number) =>
    page.$eval(`.term[data-channel="${channel}"] .xterm-rows`, (rows) =>
      [...rows.children].map((row) => (row.textContent ?? "").trimEnd()).filter((row) => row !== ""),
    );

  it("shows a proposal's age from when the server made it, also on a browser whose clock is an hour ahead", async () => {
    const client = await web.ts.clientIn("ages");
    await client.call("run/create", { alias: "old" });
    const notice = client.next("run/proposal", (p) => p.run === "old");
    const { path } = await client.call("proposal/create", { run: "old", tool: "sh", command: "echo made-35-seconds-ago" });
    const announced = await notice;
    expect(Math.abs(announced.createdAt - Date.now())).toBeLessThan(5_000);
    // 35 s old by the server's clock (as if proposed before the pages opened).
    const run = (await client.call("run/get", { run: "old" })).run;
    const row = await web.ts.server.store.db
      .selectFrom("entries")
      .innerJoin("runs", "runs.id", "entries.run_id")
      .innerJoin("projects", "projects.id", "runs.project_id")
      .select("entries.id")
      .where("projects.name", "=", "ages")
      .where("runs.alias", "=", run.alias)
      .where("entries.path", "=", path)
      .executeTakeFirstOrThrow();
    await web.ts.server.store.db
      .updateTable("entries")
      .set({ created_at: Date.now() - 35_000 })
      .where("id", "=", row.id)
      .execute();
    expect((await client.call("proposal/list", { run: "old" })).proposals[0]!.createdAt).toBeLessThan(Date.now() - 34_000);
    for (const page of [await open("ages"), await open("ages", CLOCK_AHEAD)]) {
      await page.waitForSelector(card(path));
      const age = await text(page, `${card(path)} time[data-since]`);
      expect(age).toMatch(/^\d+s$/);
      expect(Number.parseInt(age, 10)).toBeGreaterThanOrEqual(35);
      expect(Number.parseInt(age, 10)).toBeLessThan(50);
    }
  }, 60_000);

  it("keeps the project's badges true: a run whose accepted command runs waits on no one, and an ended run leaves them without a reload", async () => {
    web.model.reply({ tools: [{ name: "sh", arguments: { command: "echo started; sleep 60" } }] }, { text: "It was cancelled." });
    const client = await web.ts.clientIn("badges");
    const proposed = client.next("run/proposal", (p) => p.run === "agent");
    await client.call("run/create", { alias: "agent", model: "test", prompt: "run it" });
    const { path } = await proposed;
    const page = await open("badges");
    await page.waitForSelector(card(path));
    await waitBadges(page, "badges", { waiting: "1 waiting", open: "1 open" });
    expect(await text(page, '.runs [data-run="agent"] .status')).toBe("waiting");

    await page.click(`${card(path)} button.approve`);
    await page.waitForFunction(() => document.querySelector('.term[data-channel="1"] .xterm-rows')?.textContent?.includes("started"));
    // The turn waits for the command (the run is still 202), but no proposal waits for anyone.
    expect((await client.call("run/get", { run: "agent" })).run.status).toBe(RUN.waiting);
    await waitBadges(page, "badges", { waiting: null, open: "1 open" });
    expect((await client.call("project/list", {})).projects.find((p: { name: string }) => p.name === "badges")).toMatchObject({
      waiting: 0,
      open: 1,
    });
    await page.waitForFunction(() => document.querySelector('.runs [data-run="agent"] .status')?.textContent === "running");
    expect(await page.$eval("[data-run-status]", (el) => el.textContent)).toBe("running");

    // The abort and cancel buttons stay the same elements when the page draws the run again (a button replaced
    // between a press and its release loses the click): another proposal in the run redraws both.
    await page.evaluate(() => {
      (window as unknown as { kept: Element[] }).kept = [...document.querySelectorAll('[data-action="abort"], [data-action="cancel"]')];
    });
    const extra = await client.call("proposal/create", { run: "agent", tool: "sh", command: "true" });
    await page.waitForSelector(`.producer-list tr[data-producer="${extra.path}"]`);
    expect(await page.evaluate(() => (window as unknown as { kept: Element[] }).kept.map((b) => b.isConnected))).toEqual([true, true]);
    await client.call("run/resolve", { run: "agent", path: extra.path, decision: "reject" });
    await waitBadges(page, "badges", { waiting: null, open: "1 open" });

    // The command is cancelled, the model answers, the run ends: the badges go, with no reload.
    await page.click('[data-action="cancel"]');
    await eventually(async () => (await client.call("run/get", { run: "agent" })).run.status === RUN.done, 20_000, "the run to end");
    await waitBadges(page, "badges", { waiting: null, open: null });
    expect(await badges(page, "badges")).toEqual({ waiting: null, open: null });
  }, 90_000);

  it("keeps the producers table's sizes with the output as it streams, and shows how a cancelled command ended", async () => {
    const client = await web.ts.clientIn("sizes");
    await client.call("run/create", { alias: "job" });
    const shown = await client.call("proposal/create", { run: "job", tool: "sh", command: "head -c 172 /dev/zero | tr '\\0' x; sleep 60" });
    const other = await client.call("proposal/create", { run: "job", tool: "sh", command: "printf abc; sleep 60" });
    const page = await open("sizes");
    await page.waitForSelector(card(shown.path));
    await page.click(`${card(shown.path)} button.approve`);
    const row = (path: string) => `.producer-list tr[data-producer="${path}"]`;
    await page.waitForFunction(() => document.querySelector('.pane[data-pane="1"] .pane-head')?.textContent?.includes("172 B"));
    // The table follows the stream: the shown command's row as its pane does, another's from the stored entries.
    await page.waitForFunction(
      (selector) => document.querySelector(selector)?.textContent === "stdout 172 B",
      {},
      `${row(shown.path)} .size[data-channel="1"]`,
    );
    await client.call("run/resolve", { run: "job", path: other.path, decision: "accept" });
    await page.waitForFunction((selector) => document.querySelector(selector)?.textContent === "stdout 3 B", {}, `${row(other.path)} .size[data-channel="1"]`);

    await page.click('[data-action="cancel"]');
    await page.waitForSelector('[data-producer-status="cancelled"]');
    const log = await client.call("entry/get", { run: "job", path: shown.path });
    expect(log.attributes).toMatchObject({ outcome: "cancelled", cancelledBy: "admin via spool-web", reason: "cancelled from the web view" });
    expect(log.attributes.duration).toBeGreaterThan(0);
    expect(log.body).toMatch(/→ cancelled by admin via spool-web: cancelled from the web view in \d+ ms; stdout 172 bytes\/1 line/);
    await page.waitForFunction((selector) => document.querySelector(selector)?.textContent?.startsWith("cancelled"), {}, `${row(shown.path)} td:first-child`);
    expect(await text(page, `${row(shown.path)} td.exit`)).toBe("cancelled by admin via spool-web");
    expect(await page.$eval(`${row(shown.path)} td.exit`, (el) => el.getAttribute("title"))).toBe("cancelled from the web view");
    expect(await text(page, `${row(shown.path)} td.time`)).toMatch(/^\d+(\.\d+)? (ms|s)$/);
    expect(await text(page, `${row(shown.path)} .size[data-channel="1"]`)).toBe("stdout 172 B");
    const facts = await text(page, ".producer-detail .facts");
    expect(facts).toContain("cancelled byadmin via spool-web");
    expect(facts).toContain("reasoncancelled from the web view");
    expect(facts).toMatch(/duration\d+(\.\d+)? (ms|s)/);

    // Cancelled by another client: its name shows in that row once the table reads it.
    await client.call("stream/cancel", { run: "job", path: other.path, reason: "enough" });
    await page.waitForFunction((selector) => document.querySelector(selector)?.textContent?.startsWith("cancelled by"), {}, `${row(other.path)} td.exit`);
    expect(await text(page, `${row(other.path)} .size[data-channel="1"]`)).toBe("stdout 3 B");
  }, 90_000);

  it("types lines into a terminal from the page and the model reads them as typed: print(6*7) then exit(), not exit()6*7)", async () => {
    const client = await web.ts.clientIn("typing-lines");
    await client.call("run/create", { alias: "repl" });
    if (!HAS_PYTHON) console.warn("no python3: typing into a shell loop that reads lines instead");
    const { path } = await client.call("proposal/create", { run: "repl", tool: "sh", command: REPL.command, tty: { cols: 80, rows: 24 } });
    const page = await open("typing-lines");
    await page.waitForSelector(card(path));
    await page.click(`${card(path)} button.approve`);
    const waitOutput = (needle: string) =>
      page.waitForFunction((s) => document.querySelector('.term[data-channel="1"] .xterm-rows')?.textContent?.includes(s), {}, needle);
    await waitOutput(REPL.prompt);
    await page.waitForSelector('[data-input-hint="live"]');
    await page.click('.term[data-channel="1"]');
    // A typo, erased with Backspace before Enter.
    await page.keyboard.type("prinnt");
    await page.keyboard.press("Backspace");
    await page.keyboard.press("Backspace");
    await page.keyboard.type("t(6*7)");
    await page.keyboard.press("Enter");
    await waitOutput(REPL.answer);
    await page.keyboard.type("exit()");
    await page.keyboard.press("Enter");
    await page.waitForSelector('[data-producer-status="done"]');

    const input = (await client.call("entry/list", { run: "repl", pattern: "sh://*_0" })).entries as { path: string }[];
    const stdin = input[0]!.path;
    expect((await client.call("entry/get", { run: "repl", path: stdin })).body).toBe("prinnt\u007f\u007ft(6*7)\rexit()\r");
    const seen = (await client.call("entry/get", { run: "repl", path: stdin, view: "model" })).body as string;
    expect(seen.split("\n").filter((line) => line !== "")).toEqual(["print(6*7)", "exit()"]);
    // The page's stdin pane shows the same lines.
    await page.waitForFunction(() => document.querySelector('.term[data-channel="0"] .xterm-rows')?.textContent?.includes("exit()"));
    expect(await rowsOf(page, 0)).toEqual(["print(6*7)", "exit()"]);
  }, 60_000);
});
