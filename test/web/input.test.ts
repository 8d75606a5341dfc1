import type { Page } from "puppeteer-core";
import { expect, it } from "vitest";
import { card, describeWithBrowser, go, terminalText, useBrowser, waitTerminal } from "../helpers/browser.js";
import { eventually } from "../helpers/server.js";

/** Installed before the page's script: the methods the page sends over its WebSockets, in order. */
const SPY = `
window.__sent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  try { for (const m of [].concat(JSON.parse(String(data)))) if (m.method) window.__sent.push(m.method); } catch {}
  return send.call(this, data);
};`;

describeWithBrowser("typing into a command from the web view", () => {
  const web = useBrowser();
  /** A signed-in page on a project whose sent methods are recorded. */
  const open = (project: string) => web.open(project, { before: SPY });
  const sent = (page: Page) => page.evaluate(() => (window as unknown as { __sent: string[] }).__sent.slice());

  it("types into a command run under a terminal: its size and the keys go to it, its answer shows, and input stops when it ends", async () => {
    const client = await web.ts.clientIn("typing");
    await client.call("run/create", { alias: "ask" });
    const command = "printf 'name? '; read x; echo got:$x";
    const { path } = await client.call("proposal/create", { run: "ask", tool: "sh", command, tty: { cols: 80, rows: 24 } });
    const page = await open("typing");
    await page.waitForSelector(card(path));
    await page.click(`${card(path)} button.approve`);
    await waitTerminal(page, 1, "name?");
    await page.waitForSelector('[data-input-hint="live"]');
    expect(await page.$eval('[data-input-hint="live"]', (el) => el.textContent)).toBe("typing goes to the command");

    // The command's terminal takes the size of the page's.
    const size = await page.$eval('.term[data-channel="1"]', (el) => (el as HTMLElement).dataset.size ?? "");
    const [cols, rows] = size.split("x").map(Number);
    expect(cols).toBeGreaterThan(20);
    await eventually(
      async () => JSON.stringify((await client.call("entry/get", { run: "ask", path })).attributes.tty) === JSON.stringify({ cols, rows }),
      10_000,
      "the page's size on the log",
    );

    await page.click('.term[data-channel="1"]');
    await page.keyboard.type("hello");
    await page.keyboard.press("Enter");
    await waitTerminal(page, 1, "got:hello");
    await page.waitForSelector('[data-producer-status="done"]');
    const channels = (await client.request("entry/list", { run: "ask", pattern: "sh://*" })).entries as { path: string; attributes: { channel: number } }[];
    const body = async (channel: number) =>
      (await client.call("entry/get", { run: "ask", path: channels.find((c) => c.attributes.channel === channel)!.path })).body as string;
    expect(await body(1)).toContain("got:hello");
    // Typed once: the seq each input carried made nothing go twice.
    expect(await body(0)).toBe("hello\r");
    expect((await sent(page)).filter((m) => m === "stream/resize").length).toBeGreaterThanOrEqual(1);

    // Ended: the hint says so, and what is typed now goes nowhere.
    await page.waitForSelector('[data-input-hint="closed"]');
    expect(await page.$('.term[data-channel="1"][data-input]')).toBeNull();
    const before = (await sent(page)).filter((m) => m.startsWith("stream/input")).length;
    await page.click('.term[data-channel="1"]');
    await page.keyboard.type("more");
    expect((await sent(page)).filter((m) => m.startsWith("stream/input")).length).toBe(before);
    expect(await terminalText(page, 1)).not.toContain("more");
  }, 60_000);

  it("sends nothing from the terminal of a command without one: it stays read-only", async () => {
    const client = await web.ts.clientIn("piped");
    await client.call("run/create", { alias: "plain" });
    const { path } = await client.call("proposal/create", { run: "plain", tool: "sh", command: "echo ready; read x; echo got:$x" });
    await client.call("run/resolve", { run: "plain", path, decision: "accept" });
    const page = await open("piped");
    await go(page, ["piped", "plain", path]);
    await waitTerminal(page, 1, "ready");
    await page.click('.term[data-channel="1"]');
    await page.keyboard.type("hello");
    await page.keyboard.press("Enter");
    const methods = await sent(page);
    expect(methods.filter((m) => m === "stream/input" || m === "stream/resize")).toEqual([]);
    expect(await page.$("[data-input-hint]")).toBeNull();
    expect(await page.$('.term[data-input="live"]')).toBeNull();
    // Another client's input is all the command got.
    await client.call("stream/input", { run: "plain", path, data: "from the client\n" });
    await waitTerminal(page, 1, "got:from the client");
    const input = (await client.call("entry/list", { run: "plain", pattern: "sh://*_0" })).entries as { path: string }[];
    expect((await client.call("entry/get", { run: "plain", path: input[0]!.path })).body).toBe("from the client\n");
  }, 60_000);

  it("sends input again after a dropped connection under the same seq: the command gets it once", async () => {
    const client = await web.ts.clientIn("again");
    await client.call("run/create", { alias: "drop" });
    const { path } = await client.call("proposal/create", { run: "drop", tool: "sh", sandbox: "full", command: "a shell", tty: { cols: 80, rows: 24 } });
    await client.call("run/resolve", { run: "drop", path, decision: "accept", runner: "self" });
    await client.call("stream", { run: "drop", path, channel: 1, chunk: "$ ", seq: 1 });
    // This client owns the producer: it takes the resize, and holds the first input until the page's connection is gone.
    const typed: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const first = new Promise<void>((resolve) => (arrived = resolve));
    client.handle("producer/resize", () => ({ applied: true }));
    client.handle("producer/input", async (params: { data: string }) => {
      typed.push(Buffer.from(params.data, "base64").toString());
      arrived();
      await held;
      return { applied: true };
    });
    const page = await open("again");
    await go(page, ["again", "drop", path]);
    await page.waitForSelector('[data-input-hint="live"]');
    await page.click('.term[data-channel="1"]');
    await page.keyboard.type("x");
    await first;
    for (const connection of web.ts.server.rpc.connections) {
      if (connection.clientInfo?.name === "spool-web" && connection.project?.name === "again") connection.close(1011, "dropped by the test");
    }
    await page.waitForSelector(".conn-reconnecting");
    release();
    await page.waitForSelector(".conn-open");
    // The page sent it again after the reconnect; the server had it under that seq and did not pass it on twice.
    await page.waitForFunction(() => (window as unknown as { __sent: string[] }).__sent.filter((m) => m === "stream/input").length >= 2);
    await page.keyboard.type("y");
    await eventually(() => typed.length === 2, 10_000, "the second key at the owner");
    expect(typed).toEqual(["x", "y"]);
    const input = (await client.call("entry/list", { run: "drop", pattern: "sh://*_0" })).entries as { path: string }[];
    expect((await client.call("entry/get", { run: "drop", path: input[0]!.path })).body).toBe("xy");
    await client.call("stream/completed", { run: "drop", path, exit_code: 0 });
  }, 60_000);

  it("shows what the server refuses: an owner that takes neither a resize nor input", async () => {
    const client = await web.ts.clientIn("refusing");
    await client.call("run/create", { alias: "self" });
    // Accepted with runner "self" by a client that handles no producer/* request: resize and input are UNSUPPORTED.
    const { path } = await client.call("proposal/create", { run: "self", tool: "sh", sandbox: "full", command: "a REPL", tty: { cols: 80, rows: 24 } });
    await client.call("run/resolve", { run: "self", path, decision: "accept", runner: "self" });
    await client.call("stream", { run: "self", path, channel: 1, chunk: "> ", seq: 1 });
    const page = await open("refusing");
    await go(page, ["refusing", "self", path]);
    await waitTerminal(page, 1, ">");
    await page.waitForSelector('[data-input-hint="live"]');
    await page.waitForFunction(() => document.querySelector(".toast.error")?.textContent?.includes("Resize"));
    expect(await page.$eval(".toast.error", (el) => el.textContent)).toContain("does not take a resize");
    await page.click('.term[data-channel="1"]');
    await page.keyboard.type("x");
    await page.waitForSelector('[data-input-hint="closed"]');
    expect(await page.$eval('[data-input-hint="closed"]', (el) => el.textContent)).toContain("takes no input");
    expect(await page.$('.term[data-channel="1"][data-input]')).toBeNull();
    await client.call("stream/completed", { run: "self", path, exit_code: 0 });
  }, 60_000);
});
