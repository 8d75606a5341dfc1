import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "puppeteer-core";
import { afterAll, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { describeWithBrowser, signInLink, useBrowser } from "../helpers/browser.js";

/** Every element between a card's buttons and the document that scrolls on its own (an inner pane holding them), by class. */
const innerScrollers = (page: Page) =>
  page.evaluate(() => {
    const found: string[] = [];
    for (const button of document.querySelectorAll(".proposal .actions button")) {
      for (let el = button.parentElement; el && el !== document.body; el = el.parentElement) {
        const overflow = getComputedStyle(el).overflowY;
        if ((overflow === "auto" || overflow === "scroll") && el.scrollHeight > el.clientHeight) found.push(el.className);
      }
    }
    return found;
  });

/** Whether every Approve/Reject is fully on screen, scrolling the page itself (the window) to each card's in turn. */
const buttonsReachable = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>(".proposal .actions")].map((actions) => {
      const box = actions.getBoundingClientRect();
      window.scrollTo(0, window.scrollY + box.top - 60);
      const after = actions.getBoundingClientRect();
      return after.top >= 44 && after.bottom <= window.innerHeight;
    }),
  );

/**
 * Issue 53: the page opens on what waits for a decision: every card whole, its Approve/Reject reached without an inner
 * pane (1280×800 with three cards, 390×844 with touch); after a decision the card says what and by whom; a
 * notification's link (from a real receiver's body) opens that proposal's card, and a tap decides it.
 */
describeWithBrowser("the page opens on the queue, in Chromium", () => {
  // A deadline in force: every card says when nobody's decision becomes a rejection.
  const web = useBrowser({ server: { decisionTimeoutMs: 15 * 60_000 } });
  let admin: SpoolClient;
  let receiver: Server;
  const bodies: { url: string; event: string }[] = [];
  afterAll(() => receiver?.close());

  const three = async () => {
    admin ??= await web.ts.clientIn("queue");
    if ((await admin.call("proposal/list", {})).proposals.length === 0) {
      await admin.call("run/create", { alias: "release" }).catch(() => undefined);
      for (const command of ["./deploy.sh --env staging --tag v2.4.0 && curl -fsS https://staging.example.invalid/health", "du -sh build/", "npm test"])
        await admin.call("proposal/create", { run: "release", tool: "sh", command });
    }
  };

  it("at 1280×800 with three cards, every card is whole and its buttons are reached by scrolling the page itself", async () => {
    await three();
    const page = await web.open("queue");
    await page.setViewport({ width: 1280, height: 800 });
    await page.waitForFunction(() => document.querySelectorAll(".proposal .actions button").length >= 6);
    expect(await innerScrollers(page)).toEqual([]);
    // The first row's buttons are on screen as the page opens.
    const firstRow = await page.$$eval(".proposal .actions", (all) => all.slice(0, 2).map((a) => a.getBoundingClientRect().bottom <= window.innerHeight));
    expect(firstRow).toEqual([true, true]);
    expect(await buttonsReachable(page)).toEqual([true, true, true]);
    expect(await page.$$eval(".proposal .deadline", (all) => all.map((el) => el.textContent))).toEqual(
      Array(3).fill(expect.stringMatching(/^rejected by deadline in 1[45] min$/)),
    );
  }, 60_000);

  it("at 390×844 with touch, the same: no inner pane, every card's buttons reached by scrolling the page", async () => {
    await three();
    const page = await web.open("queue");
    await page.emulate({
      viewport: { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
      userAgent: "Mozilla/5.0 (Linux; Android 14) Mobile",
    });
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll(".proposal .actions button").length >= 6);
    expect(await innerScrollers(page)).toEqual([]);
    expect(await buttonsReachable(page)).toEqual([true, true, true]);
  }, 60_000);

  it("a notification's link opens that proposal's card on a paired phone; a tap decides it and the card says what and by whom", async () => {
    admin ??= await web.ts.clientIn("queue");
    receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (d: Buffer) => (body += d));
      request.on("end", () => {
        bodies.push(JSON.parse(body) as { url: string; event: string });
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    await admin.call("notify/add", { name: "phone", url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, events: ["proposal"] });
    // The phone is paired (its link), then the person walks away.
    const context = await web.browser.createBrowserContext();
    const phone = await context.newPage();
    await phone.emulate({
      viewport: { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
      userAgent: "Mozilla/5.0 (Linux; Android 14) Mobile",
    });
    await phone.goto(await signInLink(web.ts.server, { project: "queue" }));
    await phone.waitForSelector(".conn-open");
    await phone.goto("about:blank");
    await admin.call("run/create", { alias: "night" });
    const { path } = await admin.call("proposal/create", { run: "night", tool: "sh", command: "echo tapped from the notification" });
    const deadline = Date.now() + 20_000;
    while (!bodies.some((b) => b.url.includes(encodeURIComponent(path))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const link = bodies.find((b) => b.url.includes(encodeURIComponent(path)))!.url;
    await phone.goto(link.replace(/^http:\/\/[^/]+\//, `http://127.0.0.1:${web.ts.server.port}/`));
    const card = `.proposal.focused[data-path="${path}"]`;
    await phone.waitForSelector(card);
    expect(await phone.$(".signed-out")).toBeNull();
    const onScreen = await phone.$eval(`${card} .actions`, (a) => {
      a.scrollIntoView({ block: "nearest" });
      const box = a.getBoundingClientRect();
      return box.top >= 0 && box.bottom <= window.innerHeight;
    });
    expect(onScreen).toBe(true);
    await phone.tap(`${card} button.reject`);
    await phone.waitForSelector(`.decided[data-path="${path}"]`);
    expect(await phone.$eval(`.decided[data-path="${path}"] .verdict`, (el) => el.textContent)).toMatch(/^Rejected by admin/);
    expect((await admin.call("entry/get", { run: "night", path })).status).toBe(403);
    // A decision made elsewhere: the card says who, by the transport the server verified (a client's name is only its claim).
    const other = await admin.call("proposal/create", { run: "night", tool: "sh", command: "echo decided elsewhere" });
    await phone.waitForSelector(`.proposal[data-path="${other.path}"]`);
    await admin.call("run/resolve", { run: "night", path: other.path, decision: "reject", reason: "not now" });
    await phone.waitForSelector(`.decided[data-path="${other.path}"]`);
    expect(await phone.$eval(`.decided[data-path="${other.path}"] .verdict`, (el) => el.textContent)).toMatch(
      /Rejected by admin over (the Unix socket|TCP|in process).*: not now/,
    );
    await context.close();
  }, 90_000);
});
