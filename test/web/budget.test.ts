import { expect, it } from "vitest";
import { RUN } from "../../src/protocol/status.js";
import { describeWithBrowser, press, signInLink, text, useBrowser } from "../helpers/browser.js";
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
    await press(page, '.card.budget[data-run="capped"] [data-action="raise-budget"]');
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
    await press(page, '.card.budget[data-run="stop-it"] [data-action="stop-run"]');
    await eventually(async () => (await client.call("run/get", { run: "stop-it" })).run.status === RUN.aborted, 30_000, "the run to stop");
  }, 90_000);
  it("a paused run is a card in the queue: another project's on a phone, raised through that project's connection; the joined project's as it pauses, stopped from its card", async () => {
    const usage = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };
    web.model.reply(
      { text: "Away.", tools: [{ id: "g_away", name: "get", arguments: { path: "sh://turn_1/x" } }], usage },
      { tools: [{ id: "d_away", name: "done", arguments: { summary: "away done" } }], usage },
      { text: "Here.", tools: [{ id: "g_here", name: "get", arguments: { path: "sh://turn_1/x" } }], usage },
    );
    const other = await web.ts.clientIn("budgets-away");
    await other.call("run/create", { alias: "away", model: "test", budget: { tokens: 100 }, prompt: "Go" });
    await eventually(async () => (await other.call("run/get", { run: "away" })).run.status === RUN.paused, 30_000, "the run to pause");
    // Counted apart from runs waiting on a proposal: the page watches projects with either first.
    expect((await other.call("project/list", {})).projects.find((p) => p.name === "budgets-away")).toMatchObject({ waiting: 0, paused: 1, open: 1 });
    const client = await web.ts.clientIn("budgets-home");
    const page = await web.open("budgets-home");
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    const away = '.proposals .card.budget[data-project="budgets-away"][data-run="away"]';
    await page.waitForSelector(away);
    expect(await text(page, `${away} .why`)).toBe("its token budget of 100 tokens was reached (120 tokens used)");
    expect(await text(page, ".proposals h2")).toBe("Waiting for a decision (1)");
    // On a phone, the card and its two buttons are within the screen's width.
    const right = await page.$$eval(`${away}, ${away} button`, (all) => all.map((e) => e.getBoundingClientRect().right));
    expect(Math.max(...right)).toBeLessThanOrEqual(390);
    await press(page, `${away} [data-action="raise-budget"]`, "tap");
    await eventually(async () => (await other.call("run/get", { run: "away" })).run.status === RUN.done, 30_000, "the raised run to end");
    expect((await other.call("run/get", { run: "away" })).run.budget).toEqual({ tokens: 10_100 });
    await page.waitForFunction((sel) => !document.querySelector(sel), {}, away);

    // A run of the joined project that pauses while the page is open joins its queue; its Stop ends it.
    await client.call("run/create", { alias: "here", model: "test", budget: { tokens: 100 }, prompt: "Go" });
    const here = '.proposals .card.budget[data-project="budgets-home"][data-run="here"]';
    await page.waitForSelector(here);
    expect(await text(page, `${here} .why`)).toBe("its token budget of 100 tokens was reached (120 tokens used)");
    await press(page, `${here} [data-action="stop-run"]`, "tap");
    await eventually(async () => (await client.call("run/get", { run: "here" })).run.status === RUN.aborted, 30_000, "the run to stop");
    await page.waitForFunction((sel) => !document.querySelector(sel), {}, here);
  }, 90_000);
});

// A page in the background (another tab in front) needs a browser that has tabs: the desktop one.
describeWithBrowser(
  "a run paused at its budget, told to a page in the background",
  () => {
    const web = useBrowser({ model: true, browser: "desktop" });

    it("a page in the background raises a browser notification when a run pauses, as for a proposal: the joined project's and a watched one's", async () => {
      const usage = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };
      const get = (id: string) => ({ text: "Reading.", tools: [{ id, name: "get", arguments: { path: "sh://turn_1/x" } }], usage });
      web.model.reply(get("g_bg_home"), get("g_bg_away"));
      const home = await web.ts.clientIn("notes-home");
      const away = await web.ts.clientIn("notes-away");
      await away.call("run/create", { alias: "idle" });
      const page = await web.blank();
      await page.browserContext().overridePermissions(`http://127.0.0.1:${web.ts.server.port}`, ["notifications"]);
      // Records every notification the page makes (a wrapper around the real one).
      await page.evaluateOnNewDocument(`{
        const Real = window.Notification;
        window.__notes = [];
        window.Notification = class extends Real {
          constructor(title, options) { super(title, options); window.__notes.push({ title, body: options?.body ?? "" }); }
        };
      }`);
      await page.goto(await signInLink(web.ts.server, { project: "notes-home" }));
      await page.waitForSelector(".conn-open");
      const notes = () => page.evaluate(() => (window as unknown as { __notes: { title: string; body: string }[] }).__notes);
      // Another tab in front; the waits poll on a timer (a hidden page runs no animation frames).
      const other = await page.browserContext().newPage();
      await other.bringToFront();
      await page.waitForFunction(() => document.visibilityState === "hidden", { polling: 100 });
      await home.call("run/create", { alias: "capped-here", model: "test", budget: { tokens: 100 }, prompt: "Go" });
      await page.waitForFunction(() => (window as unknown as { __notes: unknown[] }).__notes.length === 1, { polling: 100 });
      await away.call("run/create", { alias: "capped-there", model: "test", budget: { tokens: 100 }, prompt: "Go" });
      await page.waitForFunction(() => (window as unknown as { __notes: unknown[] }).__notes.length === 2, { polling: 100 });
      expect(await notes()).toEqual([
        { title: "Spool: capped-here paused at its budget", body: "its token budget of 100 tokens was reached (120 tokens used)" },
        { title: "Spool: capped-there paused at its budget", body: "its token budget of 100 tokens was reached (120 tokens used)" },
      ]);
    }, 90_000);
  },
  "desktop",
);
