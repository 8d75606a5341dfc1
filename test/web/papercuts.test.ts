import type { Page } from "puppeteer-core";
import { expect, it } from "vitest";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { card, describeWithBrowser, go, signInLink, useBrowser } from "../helpers/browser.js";
import { infra, infraRequired } from "../helpers/infra.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { eventually } from "../helpers/server.js";

/**
 * Issue 57.8, the page's papercuts (its terminal aside), in Chromium: the runner selector only for someone who may
 * decide, a container's 64-hex id on one line, the stderr pane's head a band of its pane, a phone's top bar with
 * nothing cut, and a run whose proposal was rejected shown "rejected" in a colour of its own, not a green "done".
 */
describeWithBrowser("the page's papercuts of issue 57, in Chromium", () => {
  const web = useBrowser({ model: true, server: { agent: { toolYieldMs: 500 } } });

  /** A page of `project` at a phone's size (390×844, touch), signed in with `token` (the admin's by default). */
  async function phone(project: string, token = web.ts.server.token): Promise<Page> {
    const page = await web.blank();
    const cdp = await page.createCDPSession();
    await cdp.send("Emulation.setDeviceMetricsOverride", { width: 390, height: 844, deviceScaleFactor: 3, mobile: true });
    await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: true, maxTouchPoints: 5 });
    await page.goto(await signInLink({ port: web.ts.server.port, token }, { project }));
    await page.waitForSelector(".conn-open");
    return page;
  }

  it("a viewer's proposal card names the runner as text, with no selector it cannot use; a person's card has the selector", async () => {
    const admin = await web.ts.clientIn("viewing");
    await admin.call("run/create", { alias: "look" });
    const { path } = await admin.call("proposal/create", { run: "look", tool: "sh", command: "echo look at me" });
    const viewer = (await admin.call("token/create", { name: "watcher", role: "viewer" })).token;
    const person = (await admin.call("token/create", { name: "alice", role: "person" })).token;
    const runnerFact = async (token: string) => {
      const page = await phone("viewing", token);
      await page.waitForSelector(card(path));
      return page.$eval(`${card(path)} dd[data-fact="runner"]`, (dd) => ({
        select: dd.querySelector("select") !== null,
        text: dd.textContent ?? "",
      }));
    };
    const seen = await runnerFact(viewer);
    expect(seen.select).toBe(false);
    // What it would run on, in the words every client uses.
    expect(seen.text).toMatch(/local/);
    expect((await runnerFact(person)).select).toBe(true);
  }, 90_000);

  it("at 390 px a person's card shows the chosen runner once, whole, the selector over it unseen, and follows a change of choice", async () => {
    const admin = await web.ts.clientIn("narrow");
    await admin.call("run/create", { alias: "pick" });
    const { path } = await admin.call("proposal/create", { run: "pick", tool: "sh", command: "echo which runner" });
    const page = await phone("narrow");
    await page.waitForSelector(card(path));
    const shown = () =>
      page.$eval(`${card(path)} dd[data-fact="runner"]`, (dd) => {
        const select = dd.querySelector("select") as HTMLSelectElement;
        const whole = dd.querySelector(".runner-whole") as HTMLElement;
        const box = whole.getBoundingClientRect();
        const over = select.getBoundingClientRect();
        return {
          chosen: select.selectedOptions[0]?.textContent ?? "",
          // biome-ignore lint/performance/useDomNodeTextContent: the words as laid out on the screen
          words: whole.innerText,
          right: box.right,
          width: window.innerWidth,
          // One control, not two: the selector is unseen and lies over the words (a tap on them opens it).
          selectSeen: getComputedStyle(select).opacity !== "0",
          covers: over.left <= box.left + 1 && over.right >= box.right - 1 && over.top <= box.top + 1 && over.bottom >= box.bottom - 1,
        };
      });
    const seen = await shown();
    expect(seen.chosen).toBe("default (local; this server's own runner)");
    expect(seen).toMatchObject({ selectSeen: false, covers: true });
    // Wrapped if need be, never cut: every word of the choice is on the screen.
    expect(seen.words.replace(/\s+/g, " ")).toBe(seen.chosen);
    expect(seen.right).toBeLessThanOrEqual(seen.width);
    await page.select(`${card(path)} dd[data-fact="runner"] select`, "local");
    const after = await shown();
    expect(after.chosen).not.toBe(seen.chosen);
    expect(after.words.replace(/\s+/g, " ")).toBe(after.chosen);
  }, 90_000);

  it("at 390 px the top bar cuts nothing: the connection says 'live' whole (the server's version in its title), every part on screen", async () => {
    const page = await phone("topbar");
    const bar = await page.$eval(".top", (top) => ({
      width: window.innerWidth,
      // biome-ignore lint/performance/useDomNodeTextContent: the words shown, without the version a phone's styles hide
      conn: (top.querySelector(".conn") as HTMLElement).innerText,
      title: (top.querySelector(".conn") as HTMLElement).title,
      parts: [...top.children]
        .filter((el) => getComputedStyle(el).display !== "none")
        .map((el) => {
          const box = el.getBoundingClientRect();
          return { name: el.className, left: box.left, right: box.right, cut: el.scrollWidth > el.clientWidth + 1 };
        }),
    }));
    expect(bar.conn.trim()).toBe("live");
    expect(bar.title).toMatch(/^server \S+/);
    for (const part of bar.parts) {
      expect(part, JSON.stringify(bar)).toMatchObject({ cut: false });
      expect(part.left, JSON.stringify(part)).toBeGreaterThanOrEqual(0);
      expect(part.right, JSON.stringify(part)).toBeLessThanOrEqual(bar.width);
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
  }, 60_000);

  it("the stderr pane's head is a band of its pane (its line the pane's colour), not a box of another colour inside it", async () => {
    const client = await web.ts.clientIn("panes");
    await client.call("run/create", { alias: "both" });
    const { path } = await client.call("proposal/create", { run: "both", tool: "sh", command: "echo to-stdout; echo to-stderr >&2" });
    await client.call("run/resolve", { run: "both", path, decision: "accept" });
    await eventually(async () => (await client.call("entry/get", { run: "both", path })).producer?.state === "done", 30_000, "the command's end");
    const page = await phone("panes");
    await go(page, ["panes", "both", path]);
    await page.waitForSelector('.pane[data-pane="2"] .pane-head strong');
    const panes = await page.$$eval(".pane", (all) =>
      all.map((pane) => {
        const head = pane.querySelector(".pane-head") as HTMLElement;
        const p = getComputedStyle(pane);
        const hd = getComputedStyle(head);
        return {
          pane: pane.getAttribute("data-pane"),
          paneLine: p.borderTopColor,
          headLine: hd.borderBottomColor,
          headBox: [hd.borderTopWidth, hd.borderLeftWidth, hd.borderRightWidth],
        };
      }),
    );
    expect(panes.map((p) => p.pane).sort()).toEqual(["1", "2"]);
    for (const p of panes) {
      expect(p.headLine, JSON.stringify(p)).toBe(p.paneLine);
      expect(p.headBox, JSON.stringify(p)).toEqual(["0px", "0px", "0px"]);
    }
  }, 60_000);

  it("a run whose proposal was rejected reads 'rejected' in the runs list, in a colour of its own — live, without a reload", async () => {
    const client = await web.ts.clientIn("verdicts");
    const page = await phone("verdicts");
    web.model.reply(
      { text: "I will clean up.", tools: [{ id: "call_rm", name: "sh", arguments: { command: "rm -rf build" } }] },
      { text: "It was rejected, so I stop here." },
    );
    const proposed = new Promise<{ run: string; path: string }>((resolve) => client.on("run/proposal", (p) => p.run === "tidy" && resolve(p)));
    await client.call("run/create", { alias: "tidy", model: "test", prompt: "clean up", mode: "act" });
    const p = await proposed;
    await page.waitForSelector('[data-run="tidy"] .status-waiting');
    await client.call("run/resolve", { run: p.run, path: p.path, decision: "reject", reason: "not today" });
    await eventually(async () => (await client.call("run/get", { run: "tidy" })).run.status === RUN.done, 30_000, "the run's end");
    expect((await client.call("entry/get", { run: "tidy", path: p.path })).status).toBe(ENTRY.rejected);
    await page.waitForFunction(() => document.querySelector('[data-run="tidy"] .status')?.textContent === "rejected", { timeout: 15_000 });
    // A run that did what was asked, for the colours beside it.
    web.model.reply({ text: "Nothing to do." });
    await client.call("run/create", { alias: "fine", model: "test", prompt: "anything?", mode: "act" });
    await page.waitForFunction(() => document.querySelector('[data-run="fine"] .status')?.textContent === "done", { timeout: 30_000 });
    const colours = await page.evaluate(() => {
      const colour = (selector: string) => getComputedStyle(document.querySelector(selector)!).color;
      const probe = document.createElement("span");
      probe.className = "status status-failed";
      document.body.append(probe);
      const failed = getComputedStyle(probe).color;
      probe.remove();
      return { rejected: colour('[data-run="tidy"] .status'), done: colour('[data-run="fine"] .status'), failed };
    });
    expect(colours.rejected).not.toBe(colours.done);
    expect(colours.rejected).not.toBe(colours.failed);
    // Read again from scratch, it says the same.
    await page.reload();
    await page.waitForSelector(".conn-open");
    await page.waitForFunction(() => document.querySelector('[data-run="tidy"] .status')?.textContent === "rejected", { timeout: 15_000 });
  }, 90_000);

  it("a Docker container's 64-hex id is shown as its first 12 on one line at 390 px, the whole id in its title", async (ctx) => {
    if (!infra.dockerImage) {
      if (infraRequired) throw new Error("SPOOL_TEST_INFRA=required but no Docker image (scripts/test-infra.sh)");
      return ctx.skip();
    }
    const client = await web.ts.clientIn("boxed");
    let runner: RunnerProcess | null = null;
    try {
      runner = await spawnRunner([
        "--server",
        web.ts.server.url,
        "--token-file",
        web.ts.server.config.tokenFile,
        "--project",
        "boxed",
        "--name",
        "box",
        "--backend",
        "docker",
        "--image",
        infra.dockerImage,
      ]);
      await client.call("run/create", { alias: "in-docker" });
      const { path } = await client.call("proposal/create", { run: "in-docker", tool: "sh", command: "echo from-a-container", runner: "box" });
      await client.call("run/resolve", { run: "in-docker", path, decision: "accept" });
      await eventually(async () => (await client.call("entry/get", { run: "in-docker", path })).producer?.state === "done", 60_000, "the command's end");
      const page = await phone("boxed");
      await go(page, ["boxed", "in-docker", path]);
      await page.waitForSelector(".container-id");
      const shown = await page.$eval(".container-id", (el) => {
        const dd = el.closest("dd") as HTMLElement;
        const line = Number.parseFloat(getComputedStyle(dd).lineHeight) || 20;
        return { text: el.textContent, title: (el as HTMLElement).title, lines: el.getClientRects().length, ddHeight: dd.getBoundingClientRect().height, line };
      });
      expect(shown.title).toMatch(/^[0-9a-f]{64}$/);
      expect(shown.text).toBe(shown.title.slice(0, 12));
      expect(shown.lines).toBe(1);
      expect(shown.ddHeight).toBeLessThan(shown.line * 1.5);
    } finally {
      await runner?.stop();
    }
  }, 120_000);
});
