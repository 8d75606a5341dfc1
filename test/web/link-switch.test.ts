import type { Browser, Page } from "puppeteer-core";
import { afterAll, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { closeContexts, describeWithBrowser, sharedBrowser, signInLink, useBrowser } from "../helpers/browser.js";
import { twoServersSharingPostgres } from "../helpers/cluster.js";
import { describeWithInfra } from "../helpers/infra.js";
import { startTestServer, tempDir } from "../helpers/server.js";

/**
 * Issue 53: a link never switches who a page is without asking, nor signs it out; a page is a paired device that
 * names itself, unpairs itself, and stays signed in across a restart of the server. In Chromium.
 */
describeWithBrowser("sign-in links on a page already signed in, in Chromium", () => {
  const web = useBrowser();
  let admin: SpoolClient;
  let agentToken = "";

  const adminPage = async (): Promise<Page> => {
    admin ??= await web.ts.clientIn("links");
    agentToken ||= (await admin.call("token/create", { name: "agentA", role: "agent" })).token;
    return await web.open("links");
  };
  const who = (page: Page) => page.$eval(".who", (el) => (el as HTMLElement).dataset.principal);
  /** Opens a link in the page's own tab, as a tap on it in a chat does. */
  const follow = async (page: Page, link: string) => {
    await page.goto(link);
  };

  it("an agent's link on an admin's page asks, naming both with their roles; staying keeps admin and says so", async () => {
    const page = await adminPage();
    await follow(page, await signInLink({ port: web.ts.server.port, token: agentToken }, { project: "links" }));
    await page.waitForSelector(".switch-ask");
    const asked = await page.$eval(".switch-ask", (el) => el.textContent ?? "");
    expect(asked).toContain("admin (admin)");
    expect(asked).toContain("agentA (agent)");
    // The default (focused) choice keeps the current principal.
    expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.choice)).toBe("keep");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".conn-open");
    expect(await who(page)).toBe("admin");
    await page.waitForFunction(() => document.querySelector(".toasts")?.textContent?.includes("still signed in as admin (admin)"));
  }, 60_000);

  it("choosing the link's principal switches the page to it", async () => {
    const page = await adminPage();
    await follow(page, await signInLink({ port: web.ts.server.port, token: agentToken }, { project: "links" }));
    await page.waitForSelector('.switch-ask [data-choice="switch"]');
    await page.click('.switch-ask [data-choice="switch"]');
    await page.waitForSelector('.who[data-principal="agentA"]');
    await page.waitForSelector(".conn-open");
  }, 60_000);

  it("a bogus or spent code keeps the page signed in and says so; a malformed address is said, never thrown", async () => {
    const page = await adminPage();
    const origin = `http://127.0.0.1:${web.ts.server.port}/`;
    await follow(page, `${origin}#code=bogus`);
    await page.waitForSelector(".conn-open");
    expect(await who(page)).toBe("admin");
    await page.waitForFunction(() => document.querySelector(".toasts")?.textContent?.includes("still signed in as admin"));
    await page.evaluate(() => {
      location.hash = "#/%E0%A4%A";
    });
    await page.waitForFunction(() => document.querySelector(".toasts")?.textContent?.includes("Not an address of this page"));
    expect(await who(page)).toBe("admin");
    // The page's errors (none allowed) are checked after the test by the harness.
  }, 60_000);

  it("the page names its device, and Unpair signs it out with how to pair again", async () => {
    const page = await adminPage();
    const name = await page.$eval(".device", (el) => el.textContent);
    expect(name).toMatch(/Headless Chrome on Linux|Chrome on Linux/);
    const id = await page.$eval(".device", (el) => (el as HTMLElement).dataset.device!);
    expect((await admin.call("device/list", {})).devices.map((d) => d.id)).toContain(id);
    await page.click("button[title^='Sign this browser out']");
    await page.waitForSelector(".signed-out");
    expect(await page.$eval(".signed-out", (el) => el.textContent)).toContain("spool open --qr");
    expect((await admin.call("device/list", {})).devices.map((d) => d.id)).not.toContain(id);
  }, 60_000);
});

describeWithBrowser("a paired page across a restart of the server, in Chromium", () => {
  const home = tempDir("spool-restart-page-");
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it("the page reconnects on its own after the server restarts, signed in as before, with no new link", async () => {
    let ts = await startTestServer({ home });
    const port = ts.server.port;
    const browser = await sharedBrowser();
    const context = await browser.createBrowserContext();
    stops.push(() => context.close());
    const setup = await ts.clientIn("restart");
    setup.close();
    const page = await context.newPage();
    await page.goto(await signInLink({ port, token: ts.server.token }, { project: "restart" }));
    await page.waitForSelector(".conn-open");
    await ts.stop();
    await page.waitForSelector(".conn-reconnecting");
    ts = await startTestServer({ home, port });
    stops.push(() => ts.stop());
    await page.waitForSelector(".conn-open", { timeout: 20_000 });
    expect(await page.$eval(".who", (el) => (el as HTMLElement).dataset.principal)).toBe("admin");
    await page.reload();
    await page.waitForSelector(".conn-open");
    expect(await page.$(".signed-out")).toBeNull();
  }, 90_000);
});

/**
 * A code is for the server that made it, and a page names only servers it knows (SPEC §2a "Sign-in links"). A link whose
 * code this server does not hold (its address reached this one: a name that moved, a proxy in front of both, a link
 * edited by hand) names in `server=` whatever its writer chose. When a server sharing this one's database made the code
 * (its mark says which), the page names that server, from its own record, and asks before it goes there; when none did,
 * the page says the name comes from the link and offers nothing. In Chromium, with real servers.
 */
describeWithBrowser("a link whose code another server made, in Chromium", () => {
  const web = useBrowser();
  let other: Awaited<ReturnType<typeof startTestServer>>;
  afterAll(async () => await other?.stop());

  /** A code of B (a server of another database), in a link that says `server`, opened at A's address. */
  const foreignLink = async (server: string) => {
    other ??= await startTestServer();
    const link = new URL(await signInLink(other.server, { project: "links", server }));
    return `http://127.0.0.1:${web.ts.server.port}/${link.hash}`;
  };

  it("a page signed in on A does not offer to go where a link says it was made: the name comes from the link, and it stays", async () => {
    const page = await web.open("links");
    for (const named of ["http://evil.example:8080", `http://127.0.0.1:${((other ??= await startTestServer())).server.port}`]) {
      await page.goto(await foreignLink(named));
      await page.waitForSelector(".conn-open");
      const host = new URL(named).host;
      await page.waitForFunction(
        (h) => (document.querySelector(".toasts")?.textContent ?? "").includes(`The link says the server at ${h} made it. That name comes from the link`),
        {},
        host,
      );
      expect(await page.$(".switch-ask")).toBeNull();
      expect(await page.evaluate(() => document.body.textContent ?? "")).not.toContain(`Go to ${host}`);
      expect(new URL(page.url()).host).toBe(`127.0.0.1:${web.ts.server.port}`);
      expect(await page.$eval(".who", (el) => (el as HTMLElement).dataset.principal)).toBe("admin");
    }
  }, 90_000);

  it("a page not signed in says the name comes from the link, with no link to it", async () => {
    const blank = await web.blank();
    await blank.goto(await foreignLink("http://evil.example:8080"));
    await blank.waitForSelector(".signed-out");
    expect(await blank.$eval(".signed-out .reason", (el) => el.textContent)).toMatch(/made by another Spool server/);
    expect(await blank.$(".signed-out a.elsewhere")).toBeNull();
    expect(await blank.$eval(".signed-out [data-link-named]", (el) => el.textContent)).toContain(
      "The link says the server at evil.example:8080 made it. That name comes from the link, not from this server",
    );
    // Without the server it came from, there is nowhere to go: a signed-in page stays, saying why.
    const page = await web.open("links");
    await page.goto(`http://127.0.0.1:${web.ts.server.port}/#code=${"x".repeat(8)}.${"y".repeat(43)}`);
    await page.waitForSelector(".conn-open");
    await page.waitForFunction(() => /made by another Spool server.*still signed in as admin/.test(document.querySelector(".toasts")?.textContent ?? ""));
  }, 90_000);
});

describeWithInfra("postgres", "a link whose code a server sharing the database made", () => {
  describeWithBrowser("in Chromium", () => {
    const servers = twoServersSharingPostgres("links-peer");
    let browser: Browser;
    afterAll(async () => {
      if (browser) await closeContexts(browser);
    });

    it("the page names the server that made it as the database records it, never the link's name, asks, and goes there when told", async () => {
      const { a, b } = await servers.start();
      browser = await sharedBrowser();
      const here = `127.0.0.1:${a.server.port}`;
      const there = `127.0.0.1:${b.server.port}`;
      const page = await (await browser.createBrowserContext()).newPage();
      page.setDefaultTimeout(20_000);
      await page.goto(await signInLink(a.server, { project: "team" }));
      await page.waitForSelector(".conn-open");
      // B's code, in a link whose writer says evil.example made it.
      const link = `http://${here}/${new URL(await signInLink(b.server, { project: "team", server: "http://evil.example:8080" })).hash}`;
      await page.goto(link);
      await page.waitForSelector(".switch-ask");
      expect(await page.$eval("[data-offered-server]", (el) => el.textContent)).toBe(there);
      expect(await page.$eval(".switch-ask", (el) => el.textContent)).not.toContain("evil.example");
      await page.click('.switch-ask [data-choice="switch"]');
      await page.waitForFunction((h) => location.host === h && document.querySelector(".conn-open") !== null, {}, there);

      // Not signed in, the page links to B, by B's recorded address.
      const blank = await (await browser.createBrowserContext()).newPage();
      await blank.goto(`http://${here}/${new URL(await signInLink(b.server, { project: "team", server: "http://evil.example:8080" })).hash}`);
      await blank.waitForSelector(".signed-out a.elsewhere");
      expect(new URL(await blank.$eval(".signed-out a.elsewhere", (a) => (a as HTMLAnchorElement).href)).host).toBe(there);
    }, 120_000);
  });
});
