import type { Page } from "puppeteer-core";
import { expect, it } from "vitest";
import { describeWithBrowser, go, terminalText, useBrowser, waitTerminal } from "../helpers/browser.js";
import { eventually } from "../helpers/server.js";

/** Installed before the page's script: the methods the page sends over its WebSockets, and the dialogs it opens. */
const SPY = `
window.__sent = [];
window.__opened = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  try { for (const m of [].concat(JSON.parse(String(data)))) if (m.method) window.__sent.push(m.method); } catch {}
  return send.call(this, data);
};
window.open = (...args) => { window.__opened.push(String(args[0])); return null; };`;

/** The middle of the first place `needle` is drawn in a channel's terminal, in page pixels. */
const whereDrawn = (page: Page, channel: number, needle: string) =>
  page.$eval(
    `.term[data-channel="${channel}"] .xterm-rows`,
    (rows, needle) => {
      const walker = document.createTreeWalker(rows, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.textContent!.indexOf(needle.slice(0, 5));
        if (at === -1) continue;
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + 5);
        const box = range.getBoundingClientRect();
        return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      }
      return null;
    },
    needle,
  );

describeWithBrowser("what a command prints is text in the page's terminal", () => {
  const web = useBrowser();

  it("OSC 8, U+202E and a cursor-up-erase over a fake prompt show as text; a click goes nowhere; xterm.js answers no query as input", async () => {
    const client = await web.ts.clientIn("text");
    await client.call("run/create", { alias: "evil" });
    // A producer this test owns (runner "self"), under a terminal: the page takes typing for it.
    const { path } = await client.call("proposal/create", { run: "evil", tool: "sh", sandbox: "full", command: "a program", tty: { cols: 80, rows: 24 } });
    await client.call("run/resolve", { run: "evil", path, decision: "accept", runner: "self" });
    const typed: string[] = [];
    client.handle("producer/resize", () => ({ applied: true }));
    client.handle("producer/input", (params: { data: string }) => {
      typed.push(Buffer.from(params.data, "base64").toString("latin1"));
      return { applied: true };
    });
    const page = await web.open("text", { before: SPY });
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await go(page, ["text", "evil", path]);
    await page.waitForSelector('[data-input-hint="live"]');
    const chunk = [
      "earlier output line\r\n",
      // Up a line, erase it, and a prompt of Spool's drawn in its place.
      "\u001b[1A\u001b[2KAccept? [y]es\r\n",
      "\u001b]8;;https://evil.example/approve\u0007CLICK-ME-TO-APPROVE\u001b]8;;\u0007\r\n",
      "invoice_\u202Egnp.exe\r\n",
      // Where is the cursor, what are you, what is SGR set to, what is the background: each answered by xterm.js as input.
      "\u001b[6n\u001b[c\u001b[>c\u001bP$qm\u001b\\\u001b]11;?\u0007",
      "end-of-output\r\n",
    ].join("");
    await client.call("stream", { run: "evil", path, channel: 1, chunk, seq: 1 });
    await waitTerminal(page, 1, "end-of-output");
    const shown = await terminalText(page, 1);
    expect(shown).toContain("earlier output line");
    expect(shown).toContain("^[[1A^[[2KAccept? [y]es");
    expect(shown).toContain("^[]8;;https://evil.example/approve^GCLICK-ME-TO-APPROVE^[]8;;^G");
    expect(shown).toContain("invoice_\\u{202e}gnp.exe");
    expect(shown).not.toContain("\u202E");
    expect(shown).toContain("^[[6n^[[c^[[>c^[P$qm^[\\^[]11;?^G");

    // A click on the link's text: no link, no dialog, no window, the page where it was.
    const url = page.url();
    const at = await whereDrawn(page, 1, "CLICK-ME-TO-APPROVE");
    expect(at).not.toBeNull();
    await page.mouse.move(at!.x, at!.y);
    await page.mouse.click(at!.x, at!.y);
    expect(await page.$(".xterm-underline-1, .xterm-cursor-pointer")).toBeNull();
    expect(dialogs).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __opened: string[] }).__opened)).toEqual([]);
    expect(page.url()).toBe(url);

    // The person's own keys are all that goes to the command: typed after the queries, they arrive alone.
    await page.click('.term[data-channel="1"]');
    await page.keyboard.type("ok");
    await eventually(() => typed.join("").includes("ok"), 15_000, "the keys typed to reach the command");
    expect(typed.join("")).toBe("ok");
    // The trail records a keystroke once its owner took it: that answer may still be on its way to the server here.
    const inputBytes = async () => {
      const { events } = await client.call("audit/list", { project: "text" });
      return events.filter((e) => e.action === "input").reduce((n, e) => n + Number(e.detail.bytes), 0);
    };
    await eventually(async () => (await inputBytes()) >= 2, 15_000, "the two keys in the audit trail");
    expect(await inputBytes()).toBe(2);
  }, 60_000);
});
