import type { Page } from "puppeteer-core";
import { expect, it } from "vitest";
import { RUN } from "../../src/protocol/status.js";
import { CALL_TIMEOUT_MS } from "../../src/web/page/session.js";
import { describeWithBrowser, text, useBrowser } from "../helpers/browser.js";
import { eventually } from "../helpers/server.js";

/** How long the page's 30 s call deadline takes in the swallow test: long enough for every answered call on a busy machine. */
const DEADLINE_MS = 5_000;

/**
 * Set up before the page's script: its first `times` requests of `method` are tampered with — `refuse`: they go out
 * with a parameter the server refuses (INVALID_PARAMS), as a call can fail on a busy server; `swallow`: they are never
 * sent (their answer never comes) — and the later ones go out as the page wrote them. `window.__tampered` counts them;
 * what the page tells its console (console.info) is kept in `window.__said`.
 */
const tamper = (method: string, times: number, how: "refuse" | "swallow") => `(() => {
  window.__tampered = 0;
  if ("${how}" === "swallow") {
    // The page's call deadline (CALL_TIMEOUT_MS, 30 s) runs out in ${DEADLINE_MS} ms: the swallowed answer never comes
    // whatever the wait, and the page's own words still name its deadline (the message is made from the setting).
    const later = window.setTimeout;
    window.setTimeout = (fn, ms, ...rest) => later(fn, ms === ${CALL_TIMEOUT_MS} ? ${DEADLINE_MS} : ms, ...rest);
  }
  window.__said = [];
  const info = console.info;
  console.info = (...args) => (window.__said.push(args.join(" ")), info.apply(console, args));
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string" && data.includes('"method":"${method}"') && window.__tampered < ${times}) {
      window.__tampered++;
      if ("${how}" === "swallow") return;
      data = data.replace('"params":{', '"params":{"refused_by_the_test":1,').replace('"refused_by_the_test":1,}', '"refused_by_the_test":1}');
    }
    return send.call(this, data);
  };
})();`;

/** How many requests `tamper` tampered with. */
const tampered = (page: Page) => page.evaluate(() => (window as unknown as { __tampered: number }).__tampered);

describeWithBrowser("a run's conversation when a read of it fails", () => {
  const web = useBrowser({ model: true });

  it("is read again until it is shown: an ended run sends no more notifications to bring it", async () => {
    web.model.reply({ text: "The answer is 42." });
    const client = await web.ts.clientIn("retry");
    await client.call("run/create", { alias: "calm", model: "test" });
    await client.call("run/prompt", { run: "calm", prompt: "What is it?" });
    await eventually(async () => (await client.call("run/get", { run: "calm" })).run.status === RUN.done, 60_000, "the run to end");
    const page = await web.open("retry", { before: tamper("run/history", 2, "refuse"), route: ["calm"] });
    await page.waitForFunction(() => document.querySelector(".conversation .msg.assistant")?.textContent?.includes("The answer is 42."));
    expect(await tampered(page)).toBe(2);
    expect(await text(page, ".conversation .msg.user")).toContain("What is it?");
  });

  it("a read whose answer never comes is given up after the page's call deadline (30 s, run out sooner) and read again", async () => {
    web.model.reply({ text: "The answer is 43." });
    const client = await web.ts.clientIn("lost-reply");
    await client.call("run/create", { alias: "quiet", model: "test" });
    await client.call("run/prompt", { run: "quiet", prompt: "And now?" });
    await eventually(async () => (await client.call("run/get", { run: "quiet" })).run.status === RUN.done, 60_000, "the run to end");
    const page = await web.open("lost-reply", { before: tamper("run/history", 1, "swallow"), route: ["quiet"] });
    const said: string[] = [];
    page.on("console", (m) => said.push(m.text()));
    await page.waitForFunction(() => document.querySelector(".conversation .msg.assistant")?.textContent?.includes("The answer is 43."), {
      timeout: 30_000,
    });
    expect(await tampered(page)).toBe(1);
    expect(said.join("\n")).toContain("spool: a read failed and is tried again: run/history: no answer within 30 s");
  });

  it("a join that fails is tried again: the page does not stay connecting, and its console says why it connected again", async () => {
    const client = await web.ts.clientIn("rejoin");
    await client.call("run/create", { alias: "here" });
    const page = await web.open("rejoin", { before: tamper("project/list", 1, "refuse"), route: ["here"] });
    await page.waitForSelector(".run-header");
    const seen = await page.evaluate(() => {
      const w = window as unknown as { __tampered: number; __said: string[] };
      return { refused: w.__tampered, said: w.__said };
    });
    expect(seen.refused).toBe(1);
    expect(seen.said.join("\n")).toMatch(/^spool: connection could not join \(.+\); connecting again in 500 ms$/m);
    expect(await text(page, ".conn")).toContain("live");
  });
});
