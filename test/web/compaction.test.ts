import { expect, it } from "vitest";
import { RUN } from "../../src/protocol/status.js";
import { describeWithBrowser, text, useBrowser } from "../helpers/browser.js";
import { runCli } from "../helpers/process.js";
import type { RecordedRequest, Reply } from "../helpers/scripted-model.js";
import { eventually } from "../helpers/server.js";

const LONG = "Looking through the test logs for the flaky one; ".repeat(30);

describeWithBrowser("a compaction on the page and in spool show", () => {
  const web = useBrowser({ model: true, server: { agent: { maxStepsPerLoop: 200 } } });

  it("shows the compaction as a line in the conversation with its summary, and spool show prints the same line", async () => {
    web.model.contextWindow = 8_000;
    let turn = 0;
    web.model.reply(
      ...Array.from({ length: 40 }, () => (request: RecordedRequest): Reply => {
        if (request.tools.length === 0) return { text: "Summary: the agent went through the logs of nine runs." };
        turn++;
        if (turn >= 12) return { tools: [{ id: `done_${turn}`, name: "done", arguments: { summary: "found the flaky test" } }] };
        return { text: `Turn ${turn}. ${LONG}`, tools: [{ id: `get_${turn}`, name: "get", arguments: { path: `sh://turn_${turn}/x` } }] };
      }),
    );
    const client = await web.ts.clientIn("compacting");
    await client.call("run/create", { alias: "logs", model: "test" });
    const page = await web.open("compacting", { route: ["logs"] });
    const said: string[] = [];
    page.on("console", (m) => said.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => said.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
    await page.waitForSelector(".prompt textarea");
    await page.type(".prompt textarea", "Find the flaky test");
    await page.click(".prompt button");
    await eventually(async () => (await client.call("run/get", { run: "logs" })).run.status === RUN.done, 60_000, "the run to end");
    // A failure here (25 s: the page's 20 s wait after the run ended) once left no trace of why: it says what the page
    // shows, its connection and console, and what the server stores. Once the page stayed "reconnecting"; once it was
    // live and showed only the prompt (a read never answered?). The wait outlasts the page's call deadline (30 s).
    await page.waitForSelector(".conversation .msg.compaction", { timeout: 45_000 }).catch(async (error: Error) => {
      const shown = await page.$$eval(".conversation .msg", (els) => els.map((el) => el.className).join(", "));
      const stored = (await client.call("run/history", { run: "logs", after: 0, limit: 500 })).messages.map(
        (m) => `${m.id}:${m.role}${m.compaction ? ":compaction" : ""}`,
      );
      const conn = await page.$eval(".conn", (el) => `${el.className} ${el.textContent}`);
      const route = await page.evaluate(() => location.hash);
      throw new Error(
        `${error.message}; the page shows [${shown}] at ${route}, connection ${conn}, console [${said.join(" | ")}]; the server stores [${stored.join(" ")}]`,
      );
    });
    const line = await text(page, ".conversation .msg.compaction summary");
    expect(line).toMatch(/── context compacted \(near the model's context window\): \d+ earlier messages summarised/);
    expect(await page.$eval(".conversation .msg.compaction .text", (el) => el.textContent)).toContain("Summary: the agent went through the logs of nine runs.");
    // The messages it replaced are still shown above it.
    expect(await page.$$eval(".conversation .msg.assistant", (els) => els.some((el) => el.textContent?.includes("Turn 1. ")))).toBe(true);

    const shown = await runCli(["show", "logs", "--project", "compacting"], { SPOOL_HOME: web.ts.home }, web.ts.root, 30_000);
    expect(shown.err).toBe("");
    expect(shown.out).toMatch(/── context compacted \(near the model's context window\): \d+ earlier messages summarised/);
  }, 150_000);
});
