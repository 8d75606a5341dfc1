import { expect, it } from "vitest";
import { describeWithBrowser, go, terminalText, useBrowser, waitTerminal } from "../helpers/browser.js";
import { eventually } from "../helpers/server.js";

describeWithBrowser("finding in a command's output from the web view", () => {
  const web = useBrowser();

  it("the find box lists the stored output's matching lines with their numbers; a click scrolls the terminal to one; no match says so", async () => {
    const client = await web.ts.clientIn("finding");
    await client.call("run/create", { alias: "build" });
    const command = 'for i in $(seq 1 3000); do if [ "$i" = 2500 ]; then echo "ERROR at $i"; else echo "line $i"; fi; done';
    const { path } = await client.call("proposal/create", { run: "build", tool: "sh", command });
    await client.call("run/resolve", { run: "build", path, decision: "accept" });
    await eventually(async () => (await client.call("entry/get", { run: "build", path })).producer?.state === "done", 30_000, "the command to end");

    const page = await web.open("finding");
    await go(page, ["finding", "build", path]);
    await waitTerminal(page, 1, "line 3000");
    // The terminal shows the output's end: the error, 500 lines up, is not on its screen.
    expect(await terminalText(page, 1)).not.toContain("ERROR at 2500");

    await page.type(".find-box input", "error AT");
    await page.click('.find-box button[type="submit"]');
    await page.waitForSelector('.find-list button[data-line="2500"]');
    const rows = await page.$$eval(".find-list button", (buttons) => buttons.map((b) => b.textContent));
    expect(rows).toEqual(["2500 ERROR at 2500"]);

    await page.click('.find-list button[data-line="2500"]');
    await waitTerminal(page, 1, "ERROR at 2500");
    expect(await terminalText(page, 1)).not.toContain("line 3000");

    await page.$eval(".find-box input", (input) => {
      (input as HTMLInputElement).value = "";
    });
    await page.type(".find-box input", "no such text");
    await page.click('.find-box button[type="submit"]');
    await page.waitForSelector(".find-results .find-none");
    expect(await page.$eval(".find-results", (el) => el.textContent)).toBe("No line matches.");
    expect(await page.$(".find-list button")).toBeNull();
  });
});
