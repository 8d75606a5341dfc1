import type { Page } from "puppeteer-core";
import { afterAll, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { describeWithBrowser, sharedBrowser, signInLink } from "../helpers/browser.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * The page never loses a tap while it reconnects: with the server restarting under it, every project's cards stay
 * in the queue, their Approve and Reject are off and say why (no script error reaches a toast), and once it is
 * live again a tap decides. In Chromium, at a desktop's size and a phone's.
 */
describeWithBrowser("a tap while the page reconnects, in Chromium", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  for (const [label, viewport] of [
    ["1280×800", { width: 1280, height: 800 }],
    ["390×844 with touch", { width: 390, height: 844, hasTouch: true, isMobile: true }],
  ] as const) {
    it(`at ${label}: the cards of both projects stay with their buttons off while the server restarts, then a tap approves`, async () => {
      const home = tempDir("spool-reconnect-taps-");
      let ts: TestServer = await startTestServer({ home });
      stops.push(() => ts.stop());
      const port = ts.server.port;
      const propose = async (project: string): Promise<{ client: SpoolClient; path: string }> => {
        const client = await ts.clientIn(project);
        await client.call("run/create", { alias: "r" });
        const { path } = await client.call("proposal/create", { run: "r", tool: "sh", command: `echo ${project}` });
        return { client, path };
      };
      const a = await propose("taps-a");
      const b = await propose("taps-b");
      a.client.close();
      b.client.close();

      const browser = await sharedBrowser();
      const context = await browser.createBrowserContext();
      stops.push(() => context.close());
      const page = await context.newPage();
      await page.setViewport(viewport);
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      await page.goto(await signInLink({ port, token: ts.server.token }, { project: "taps-a" }));
      await page.waitForSelector(".conn-open");
      const heading = () => page.$eval(".proposals h2, main h2", (el) => el.textContent ?? "");
      await page.waitForFunction(() => document.querySelectorAll(".proposal .approve").length === 2);
      expect(await heading()).toBe("Waiting for a decision (2, in 2 projects)");

      await ts.stop();
      await page.waitForSelector(".conn-reconnecting");
      // Both projects' cards stay, each saying it cannot be decided now, its buttons off.
      await page.waitForFunction(() => document.querySelectorAll(".proposal.offline").length === 2);
      expect(await heading()).toBe("Waiting for a decision (2, in 2 projects)");
      expect(await page.$$eval(".proposal .approve", (buttons) => buttons.map((b) => (b as HTMLButtonElement).disabled))).toEqual([true, true]);
      expect(await page.$$eval(".proposal .offline-note", (notes) => notes.filter((n) => !(n as HTMLElement).hidden).length)).toBe(2);
      // A tap now does nothing it could lose: no toast of a script error, nothing sent.
      await tapApprove(page, "taps-a", viewport.width < 500);
      const toasts = await page.$eval(".toasts", (el) => el.textContent ?? "");
      expect(toasts).not.toMatch(/Cannot read|null|undefined/);

      ts = await startTestServer({ home, port });
      await page.waitForSelector(".conn-open", { timeout: 20_000 });
      await page.waitForFunction(() => document.querySelectorAll(".proposal .approve:not([disabled])").length === 2, { timeout: 20_000 });
      expect(await heading()).toBe("Waiting for a decision (2, in 2 projects)");
      await tapApprove(page, "taps-b", viewport.width < 500);
      await tapApprove(page, "taps-a", viewport.width < 500);
      const admin = await ts.clientIn("taps-a");
      await eventually(async () => (await admin.call("entry/get", { run: "r", path: a.path })).status === ENTRY.done, 15_000, "taps-a's proposal accepted");
      const other = await ts.clientIn("taps-b");
      await eventually(async () => (await other.call("entry/get", { run: "r", path: b.path })).status === ENTRY.done, 15_000, "taps-b's proposal accepted");
      admin.close();
      other.close();
      expect(errors).toEqual([]);
    }, 120_000);
  }
});

/** Taps (or clicks) the Approve of the card of `project`'s proposal; the queue may have moved on to its run's page. */
async function tapApprove(page: Page, project: string, touch: boolean): Promise<void> {
  const selector = `.proposal[data-project="${project}"] .approve`;
  await page.waitForSelector(selector);
  if (touch) await page.tap(selector);
  else await page.click(selector);
}
