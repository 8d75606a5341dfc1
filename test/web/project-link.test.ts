import { expect, it } from "vitest";
import { describeWithBrowser, signInLink, useBrowser } from "../helpers/browser.js";
import { tempDir } from "../helpers/server.js";

/**
 * A project's link (`spool open --project NAME`, or `spool open` run in the project's directory, which names its root)
 * opens on that project's waiting cards, each with its Approve, at a phone's size and a desktop's — the proposals
 * waiting before the page was opened, another project's too.
 */
describeWithBrowser("a project's link opens on its waiting cards, in Chromium", () => {
  const web = useBrowser();
  let root = "";

  it.each([
    ["390×844, by name", { width: 390, height: 844, hasTouch: true, isMobile: true }, "project"],
    ["1280×800, by name", { width: 1280, height: 800 }, "project"],
    ["390×844, by root", { width: 390, height: 844, hasTouch: true, isMobile: true }, "root"],
    ["1280×800, by root", { width: 1280, height: 800 }, "root"],
  ] as const)(
    "at %s",
    async (_label, viewport, by) => {
      if (!root) {
        // Another project's proposals, older and more of them, wait too.
        const other = await web.ts.clientIn("elsewhere-busier");
        await other.call("run/create", { alias: "q" });
        for (const n of [1, 2]) await other.call("proposal/create", { run: "q", tool: "sh", command: `echo other ${n}` });
        // The project has a root of its own (the other one's is the test server's shared root).
        const app = await web.ts.client();
        await app.initialize("linked", { root: tempDir("spool-linked-") });
        await app.call("run/create", { alias: "r" });
        await app.call("proposal/create", { run: "r", tool: "sh", command: "echo linked" });
        root = (await app.call("project/list", {})).projects.find((p) => p.name === "linked")!.root;
      }
      const page = await web.blank();
      await page.setViewport(viewport);
      await page.goto(await signInLink(web.ts.server, by === "project" ? { project: "linked" } : { root }));
      await page.waitForSelector(".conn-open");
      const mine = '.proposal[data-project="linked"]';
      await page.waitForSelector(`${mine} .approve`);
      expect(await page.$eval(".who", (el) => (el as HTMLElement).dataset.principal)).toBe("admin");
      expect(await page.evaluate(() => location.hash)).toBe("#/linked");
      // The project's own card comes first, its Approve on screen without scrolling.
      expect(await page.$eval(".proposal", (el) => (el as HTMLElement).dataset.project)).toBe("linked");
      const box = await (await page.$(`${mine} .approve`))!.boundingBox();
      expect(box!.y + box!.height).toBeLessThanOrEqual(viewport.height);
      if (process.env.SPOOL_SHOT) await page.screenshot({ path: `/tmp/link-${viewport.width}-${by}.png` });
    },
    60_000,
  );
});
