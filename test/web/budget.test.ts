import { expect, it } from "vitest";
import { RUN } from "../../src/protocol/status.js";
import { describeWithBrowser, text, useBrowser } from "../helpers/browser.js";
import type { Reply } from "../helpers/scripted-model.js";
import { eventually } from "../helpers/server.js";

describeWithBrowser("a run paused at its budget on the page", () => {
  const web = useBrowser({ model: true });

  it("shows why the run paused with its spend, and its Raise button lets it go on to its end", async () => {
    let turn = 0;
    web.model.reply(
      ...Array.from({ length: 10 }, () => (): Reply => {
        turn++;
        const usage = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };
        if (turn >= 4) return { tools: [{ id: `done_${turn}`, name: "done", arguments: { summary: "checked" } }], usage };
        return { text: `Turn ${turn}.`, tools: [{ id: `get_${turn}`, name: "get", arguments: { path: "sh://turn_1/x" } }], usage };
      }),
    );
    const client = await web.ts.clientIn("budgets");
    await client.call("run/create", { alias: "capped", model: "test", budget: { tokens: 200 } });
    const page = await web.open("budgets", { route: ["capped"] });
    await page.waitForSelector(".prompt textarea");
    await client.call("run/prompt", { run: "capped", prompt: "Check it" });
    await page.waitForSelector('.card.budget[data-run="capped"]');
    expect(await text(page, ".card.budget .why")).toBe("its token budget of 200 tokens was reached (240 tokens used)");
    expect(await text(page, "[data-run-status]")).toBe("paused");
    expect(await text(page, ".run-header .dim")).toContain("240 tokens of 200 tokens");
    expect(turn).toBe(2);
    await page.click('.card.budget [data-action="raise-budget"]');
    await eventually(async () => (await client.call("run/get", { run: "capped" })).run.status === RUN.done, 30_000, "the run to end");
    expect(turn).toBe(4);
    await page.waitForFunction(() => !document.querySelector(".card.budget"));
    const { run } = await client.call("run/get", { run: "capped" });
    expect(run.budget).toEqual({ tokens: 10_200 });
  }, 90_000);

  it("its Stop button ends the paused run", async () => {
    web.model.reply({
      text: "One.",
      tools: [{ id: "g1", name: "get", arguments: { path: "sh://turn_1/x" } }],
      usage: { prompt_tokens: 500, completion_tokens: 20, total_tokens: 520 },
    });
    const client = await web.ts.clientIn("budgets");
    await client.call("run/create", { alias: "stop-it", model: "test", budget: { tokens: 100 }, prompt: "Go" });
    await eventually(async () => (await client.call("run/get", { run: "stop-it" })).run.status === RUN.paused, 30_000, "the run to pause");
    const page = await web.open("budgets", { route: ["stop-it"] });
    await page.waitForSelector('.card.budget [data-action="stop-run"]');
    await page.click('.card.budget [data-action="stop-run"]');
    await eventually(async () => (await client.call("run/get", { run: "stop-it" })).run.status === RUN.aborted, 30_000, "the run to stop");
  }, 90_000);
});
