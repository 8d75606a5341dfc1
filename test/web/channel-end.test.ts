import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { closeContexts, describeWithBrowser, sharedBrowser, signedInPage } from "./browser.js";

describeWithBrowser("a channel that ends while its pane is shown", () => {
  let ts: TestServer;
  let browser: Browser;
  let page: Page | null = null;
  const errors: string[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    browser = await sharedBrowser();
  }, 60_000);
  afterAll(async () => {
    await page?.browserContext().close();
    if (browser) await closeContexts(browser);
    await ts?.stop();
  });

  it("an empty channel drawn open while it ran is drawn empty as it ends, in the same drawing that says it ended", async () => {
    const client = await ts.clientIn("ends");
    await client.call("run/create", { alias: "job" });
    // A producer this test owns (runner "self"): stdout gets a line, stderr nothing.
    const { path } = await client.call("proposal/create", { run: "job", tool: "sh", sandbox: "full", command: "make quiet" });
    const resolved = await client.call("run/resolve", { run: "job", path, decision: "accept", runner: "self" });
    expect(resolved.channels.map((c: { channel: number }) => c.channel)).toEqual([1, 2]);
    await client.call("stream", { run: "job", path, channel: 1, chunk: "working\n", seq: 1 });

    page = await signedInPage(browser, ts.server, { project: "ends" });
    page.setDefaultTimeout(20_000);
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.evaluate((hash) => (location.hash = hash), `#/ends/job/${encodeURIComponent(path)}`);
    await page.waitForFunction(() => document.querySelector('.term[data-channel="1"] .xterm-rows')?.textContent?.includes("working"));
    // Open while it runs: a terminal, not "no output".
    expect(await page.$eval('.pane[data-pane="2"]', (el) => el.classList.contains("empty"))).toBe(false);
    expect(await page.$eval('[data-head="2"] .status', (el) => el.textContent)).toBe("running");
    // Every drawing of stderr's heading from here on: what its status said, and whether the pane was drawn empty.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { __seen: string[] }).__seen = seen;
      const detail = document.querySelector(".producer-detail")!;
      new MutationObserver(() => {
        const pane = detail.querySelector('.pane[data-pane="2"]');
        const status = pane?.querySelector(".pane-head .status")?.textContent ?? "";
        const shown = `${status} ${pane?.classList.contains("empty") ? "empty" : "open"}`;
        if (seen.at(-1) !== shown) seen.push(shown);
      }).observe(detail, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["class"] });
    });

    await client.call("stream/completed", { run: "job", path, exit_code: 0, duration: 10 });
    await page.waitForSelector('.pane.empty[data-pane="2"]');
    await page.waitForSelector('[data-producer-status="done"]');
    // Never "done" over an open, empty terminal: the end itself says the channel held nothing.
    const seen = await page.evaluate(() => (window as unknown as { __seen: string[] }).__seen);
    expect(seen.filter((s) => !s.startsWith("running"))).toEqual(["done empty"]);
    expect(await page.$eval('.pane[data-pane="1"]', (el) => el.classList.contains("empty"))).toBe(false);
    expect(errors).toEqual([]);
  }, 60_000);
});
