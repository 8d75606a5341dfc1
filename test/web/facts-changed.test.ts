import type { Browser } from "puppeteer-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { card, closeContexts, describeWithBrowser, holdMessages, messageHold, releaseMessages, sharedBrowser, signedInPage } from "../helpers/browser.js";
import { describeWithInfra } from "../helpers/infra.js";
import { movedProposal } from "../helpers/moved-proposal.js";

/**
 * The page's Approve sends the facts revision its card shows: a proposal drawn with server A's runner, whose server
 * stops before the click, is moved to B's runner (revision 2). The click on the card as drawn is refused
 * (FACTS_CHANGED), nothing runs; the card is drawn again with the new facts and says why, and only an approval of
 * those runs it, on B. Two real servers on PostgreSQL, the page in Chromium.
 */
describeWithBrowser("the page: an approval on facts that changed is refused and the card shows the new facts", () => {
  describeWithInfra("postgres", "two servers, one database", () => {
    const moved = movedProposal("facts-page");
    let browser: Browser;
    beforeAll(async () => {
      browser = await sharedBrowser();
    }, 60_000);
    afterAll(async () => {
      if (browser) await closeContexts(browser);
    });

    it("Approve on local@A's card does not run it on local@B: the card is drawn again with B's runner, and Approve on that runs it", async () => {
      const { b } = await moved.start();
      const path = await moved.propose("moved", "echo ran-here");
      const page = await signedInPage(browser, b.server, { project: "team" }, messageHold);
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      // Another screen, whose messages come as they are sent: its card is drawn again when the facts change.
      const live = await signedInPage(browser, b.server, { project: "team" });
      const runnerShown = (on = page) => on.$eval(`${card(path)} [data-fact="runner"]`, (el) => el.textContent ?? "");
      await page.waitForSelector(`${card(path)} button.approve`);
      await live.waitForSelector(`${card(path)} button.approve`);
      expect(await runnerShown()).toContain(`default (${moved.runnerA()}; that server's own runner)`);
      expect(await runnerShown(live)).toContain(`default (${moved.runnerA()}; that server's own runner)`);

      // A stops before the click: B takes the proposal for its own runner (revision 2). The page has not heard of it
      // yet (its messages wait, as on a slow link): the card clicked is the one drawn with A's runner.
      await holdMessages(page);
      await moved.move(path);
      await page.click(`${card(path)} button.approve`);
      // The page heard of the move only after the click (the notices were held, not lost or never sent).
      expect(await releaseMessages(page)).toBeGreaterThan(0);
      await live.waitForFunction(
        (selector, runner) => document.querySelector(selector)?.textContent?.includes(`default (${runner};`),
        {},
        `${card(path)} [data-fact="runner"]`,
        moved.runnerB(),
      );
      await page.waitForSelector(`${card(path)} .facts-changed`);
      expect(await page.$eval(`${card(path)} .facts-changed`, (el) => el.textContent)).toMatch(/^Not approved: the facts changed .*facts revision 2/);
      expect(await runnerShown()).toContain(`default (${moved.runnerB()}; that server's own runner)`);
      expect(await moved.pending("moved", path)).toBe(true);

      // The held notices are still being acted on (the runners are read again, the cards drawn again): the click is
      // made in the page, on the card there at that moment.
      await page.$eval(`${card(path)} button.approve`, (button) => (button as HTMLButtonElement).click());
      expect(await moved.ran("moved", path)).toEqual({ server: moved.runnerB(), out: "ran-here\n" });
      expect(errors).toEqual([]);
      await page.browserContext().close();
      await live.browserContext().close();
    }, 120_000);
  });
});
