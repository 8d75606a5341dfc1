import type { Page } from "puppeteer-core";
import { expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { describeWithBrowser, signInLink, useBrowser } from "../helpers/browser.js";

/** The queue's cards in order, as `project run command`. */
const queue = (page: Page) =>
  page.$$eval(".proposals .proposal", (cards) =>
    cards.map((c) => `${(c as HTMLElement).dataset.project} ${(c as HTMLElement).dataset.run} ${c.querySelector(".command")?.textContent?.slice(2)}`),
  );

/**
 * Issue 53: the page opens on the queue of every proposal waiting for a decision across the projects the principal
 * sees (not only the project it joined): the one the deadline rejects first comes first, each card says its project,
 * and a tap decides it, whichever project it is in. A credential scoped to one project sees that one's only.
 */
describeWithBrowser("the queue spans projects, in Chromium", () => {
  const web = useBrowser({ server: { decisionTimeoutMs: 15 * 60_000 } });
  const clients: Record<string, SpoolClient> = {};
  const propose = async (project: string, run: string, command: string) => {
    clients[project] ??= await web.ts.clientIn(project);
    await clients[project].call("run/create", { alias: run }).catch(() => undefined);
    return (await clients[project].call("proposal/create", { run, tool: "sh", command })).path;
  };

  it("two projects' waiting proposals are both in the first view, soonest deadline first, and a tap decides each", async () => {
    // Created in this order, so their deadlines fall in this order: beta's lies between alpha's two.
    const a1 = await propose("alpha", "build", "make all");
    const b1 = await propose("beta", "deploy", "./deploy.sh staging");
    const a2 = await propose("alpha", "lint", "npm run lint");
    // No project in the link: the page joins the busiest (alpha, two runs waiting); beta's card comes on a watch of its own.
    const page = await web.blank();
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(await signInLink(web.ts.server));
    await page.waitForFunction(() => document.querySelectorAll(".proposals .proposal").length === 3);
    expect(page.url()).toMatch(/#\/alpha$/);
    expect(await queue(page)).toEqual(["alpha build make all", "beta deploy ./deploy.sh staging", "alpha lint npm run lint"]);
    expect(await page.$eval(".proposals h2", (el) => el.textContent)).toBe("Waiting for a decision (3, in 2 projects)");
    expect(await page.$$eval(".proposals .proposal .project-name", (all) => all.map((a) => a.textContent))).toEqual(["alpha", "beta", "alpha"]);
    expect(await page.$$eval(".proposals .proposal .deadline", (all) => all.length)).toBe(3);

    // A run's page keeps to its project (other projects' cards would push the run out of view): they are counted, with a way back.
    await page.evaluate(() => (location.hash = "#/alpha/lint"));
    await page.waitForSelector(".queue-more");
    expect(await queue(page)).toEqual(["alpha lint npm run lint", "alpha build make all"]);
    expect(await page.$eval(".queue-more", (el) => el.textContent)).toBe("1 more waiting in other projects");
    await page.click(".queue-more a");
    await page.waitForFunction(() => document.querySelectorAll(".proposals .proposal").length === 3);
    expect(page.url()).toMatch(/#\/alpha$/);

    // A tap on beta's Reject decides it in beta, from a page joined to alpha; the card says so.
    await page.click(`.proposal[data-project="beta"][data-path="${b1}"] button.reject`);
    await page.waitForSelector(`.decided[data-project="beta"][data-path="${b1}"]`);
    expect(await page.$eval(`.decided[data-path="${b1}"] .verdict`, (el) => el.textContent)).toMatch(/^Rejected by admin \(this page\)/);
    expect((await clients.beta!.call("entry/get", { run: "deploy", path: b1 })).status).toBe(403);
    // Alpha's, on the page's own connection: rejected too.
    for (const [run, path] of [
      ["build", a1],
      ["lint", a2],
    ] as const) {
      await page.click(`.proposal[data-project="alpha"][data-path="${path}"] button.reject`);
      await page.waitForSelector(`.decided[data-project="alpha"][data-path="${path}"]`);
      expect((await clients.alpha!.call("entry/get", { run, path })).status).toBe(403);
    }
    expect(await queue(page)).toEqual([]);

    // A new proposal in beta joins the open page's queue live, and one decided elsewhere leaves it saying by whom.
    const b2 = await propose("beta", "deploy", "./deploy.sh production");
    await page.waitForSelector(`.proposal[data-project="beta"][data-path="${b2}"]`);
    await clients.beta!.call("run/resolve", { run: "deploy", path: b2, decision: "reject", reason: "not on a Friday" });
    await page.waitForSelector(`.decided[data-project="beta"][data-path="${b2}"]`);
    expect(await page.$eval(`.decided[data-path="${b2}"] .verdict`, (el) => el.textContent)).toMatch(/Rejected by admin.*: not on a Friday/);
  }, 90_000);

  it("a credential scoped to one project sees that project's proposals only", async () => {
    await propose("alpha", "build", "echo alpha waits");
    await propose("beta", "deploy", "echo beta waits");
    const { token } = await clients.alpha!.call("token/create", { name: "alpha-person", role: "person", projects: ["beta"] });
    const page = await web.blank();
    await page.goto(await signInLink({ port: web.ts.server.port, token }));
    await page.waitForSelector(`.proposal[data-project="beta"]`);
    expect((await queue(page)).map((q) => q.split(" ")[0])).toEqual(["beta"]);
  }, 60_000);
});
