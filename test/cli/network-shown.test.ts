import { expect, it } from "vitest";
import { describeWithBrowser, go, useBrowser } from "../helpers/browser.js";
import { spawnCli } from "../helpers/process.js";

/**
 * Where a command went is seen after it ran: `spool show`, `spool entries` and the page's command panel each say the
 * command's network and the hosts it reached and was refused (what its runner reported as it ended), in one formatter's
 * words; the page's stderr pane is tall enough for the egress proxy's lines.
 */
describeWithBrowser("a command's network after it ran, on every client", () => {
  const web = useBrowser();
  const REACHED = "reached registry.test:443, cdn.test:443; refused evil.test:443";

  it("spool show and spool entries print it; the page's command panel shows it, and its stderr pane holds ten lines", async () => {
    const client = await web.ts.clientIn("went");
    await client.call("run/create", { alias: "net" });
    const { path } = await client.call("proposal/create", { run: "net", tool: "sh", command: "npm install", sandbox: "full" });
    const { channels } = await client.call("run/resolve", { run: "net", path, decision: "accept", runner: "self" });
    const stderr = channels.find((c) => c.channel === 2)!;
    const lines = Array.from({ length: 10 }, (_, i) => `spool egress: blocked: evil${i}.test:443 (not on the list)\n`).join("");
    await client.call("stream", { run: "net", path, channel: 2, chunk: lines, seq: 1 });
    await client.call("stream/completed", {
      run: "net",
      path,
      exit_code: 0,
      egress: { allowed: ["registry.test:443", "cdn.test:443"], blocked: ["evil.test:443"] },
    });
    const where = ["--server", web.ts.server.url, "--token-file", web.ts.server.config.tokenFile, "--project", "went"];

    const show = spawnCli(["show", "net", ...where], { NO_COLOR: "1" });
    expect(await show.exit).toBe(0);
    expect(show.stdout()).toMatch(new RegExp(`#1 npm install .*\\n +network .*; ${REACHED}\\n`));
    const entries = spawnCli(["entries", "net", ...where]);
    expect(await entries.exit).toBe(0);
    const logRow = entries
      .stdout()
      .split("\n")
      .find((l) => l.includes(path));
    expect(logRow).toContain(REACHED);

    const page = await web.open("went");
    await go(page, ["went", "net", path]);
    await page.waitForSelector(".producer-detail [data-network]");
    expect(await page.$eval(".producer-detail [data-network]", (el) => el.textContent ?? "")).toContain(REACHED);
    // The stderr pane shows its ten lines without scrolling.
    await page.waitForFunction(
      (n) => (document.querySelector(`.term[data-channel="${n}"] .xterm-rows`)?.textContent ?? "").includes("evil9.test"),
      {},
      stderr.channel,
    );
    const pane = await page.$eval(".pane.channel-stderr", (el) => el.getBoundingClientRect().height);
    expect(pane).toBeGreaterThanOrEqual(10 * 15);
    client.close();
  }, 90_000);
});
