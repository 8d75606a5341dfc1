import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ENTRY } from "../../src/protocol/status.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";
import { closeContexts, describeWithBrowser, sharedBrowser, signInLink } from "./browser.js";

/** The channel's size: 100 MiB. */
const TOTAL = 100 * 1024 * 1024;
/** One line longer than a read (limits.maxReadBytes, 8 MiB): a pager reading by lines must come back for the rest of it. */
const LONG_LINE = 9 * 1024 * 1024;

/**
 * 100 MiB of lines of every length from empty to 3000 bytes (printable ASCII, tabs and two-byte UTF-8
 * characters that chunks may cut in half), one line of 9 MiB a third of the way in, and a last line without
 * its newline. The same bytes each run (a fixed xorshift seed).
 */
function bigChannel(): Buffer {
  const out = Buffer.alloc(TOTAL);
  const alphabet = Buffer.from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_=+/()[]{}<>!?#$%&*'\"");
  let state = 0x2545f491;
  // 31 of xorshift32's 32 bits: a small integer, whose remainders V8 takes in integer arithmetic (the whole 32 bits,
  // a double, made this loop 1.7 s instead of 0.6).
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 1;
  };
  let at = 0;
  let longDone = false;
  while (at < TOTAL) {
    const long = !longDone && at > TOTAL / 3;
    if (long) longDone = true;
    const end = Math.min(TOTAL - 1, at + (long ? LONG_LINE : next() % 3001));
    while (at < end) {
      const r = next();
      if (r % 97 === 0 && at + 2 <= end) {
        // é (C3 A9): a character a chunk boundary may split.
        out[at++] = 0xc3;
        out[at++] = 0xa9;
      } else {
        out[at++] = r % 61 === 0 ? 0x09 : alphabet[r % alphabet.length]!;
      }
    }
    if (at < TOTAL - 1) out[at++] = 0x0a;
    else out[at++] = 0x21;
  }
  return out;
}

/**
 * Set up in the page before its script loads: every chunk the page decodes (`Uint8Array.fromBase64`, which the
 * terminal takes for base64 chunks) is kept while `window.__tap.on` is set, so the test can hash what the page
 * received, in the order it handed it to its terminal.
 */
const TAP = `(() => {
  const native = Uint8Array.fromBase64;
  const decode = native
    ? (text) => native.call(Uint8Array, text)
    : (text) => { const b = atob(text); const out = new Uint8Array(b.length); for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i); return out; };
  const tap = { on: false, parts: [], bytes: 0 };
  window.__tap = tap;
  Object.defineProperty(Uint8Array, "fromBase64", {
    configurable: true,
    writable: true,
    value: (text) => {
      const out = decode(text);
      if (tap.on) { tap.parts.push(out); tap.bytes += out.length; }
      return out;
    },
  });
})();`;

describeWithBrowser("the page's whole output of a 100 MiB channel", () => {
  let ts: TestServer;
  let browser: Browser;
  let opened: Page | null = null;
  const errors: string[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    browser = await sharedBrowser();
  }, 60_000);
  afterAll(async () => {
    await opened?.browserContext().close();
    if (browser) await closeContexts(browser);
    await ts?.stop();
  });

  it("draws every byte, in order: lines of every length, one longer than a read, a last line without a newline", async () => {
    const data = bigChannel();
    const want = createHash("sha256").update(data).digest("hex");
    const file = join(ts.root, "big.txt");
    writeFileSync(file, data);
    const client = await ts.clientIn("big");
    await client.call("run/create", { alias: "pager" });
    const { path } = await client.call("proposal/create", { run: "pager", tool: "sh", command: `cat ${file}` });
    const resolved = await client.call("run/resolve", { run: "pager", path, decision: "accept" });
    const stdout = resolved.channels.find((c: { channel: number }) => c.channel === 1)!.path;
    // The page signs in while cat's output is stored; it opens the channel once the channel is whole.
    const signingIn = (async () => {
      const page = await (await browser.createBrowserContext()).newPage();
      opened = page;
      page.setDefaultTimeout(20_000);
      page.on("pageerror", (error) => errors.push(String(error)));
      await page.evaluateOnNewDocument(TAP);
      await page.goto(await signInLink(ts.server, { project: "big" }));
      await page.waitForSelector(".conn-open");
      return page;
    })();
    // Should the wait for cat fail first, its failure is the one reported.
    signingIn.catch(() => {});
    await eventually(async () => (await client.call("entry/get", { run: "pager", path: stdout, limit: 1 })).status !== ENTRY.streaming, 60_000, "cat to end");
    const stored = (await client.call("entry/list", { run: "pager", pattern: "sh://*_1" })).entries[0]!;
    expect([stored.status, stored.bytes]).toEqual([ENTRY.done, TOTAL]);

    const page = await signingIn;
    await page.evaluate((hash) => (location.hash = hash), `#/big/pager/${encodeURIComponent(path)}`);
    await page.waitForSelector('[data-head="1"] [data-action="whole"]');
    // The tap starts in the task that switches the pane to whole output: every chunk decoded from here on is the whole terminal's.
    await page.evaluate(() => {
      (window as unknown as { __tap: { on: boolean } }).__tap.on = true;
      document.querySelector<HTMLButtonElement>('[data-head="1"] [data-action="whole"]')!.click();
    });
    await page.waitForFunction(
      (n) => Number(document.querySelector<HTMLElement>('.term[data-channel="1"]')?.dataset.written ?? 0) >= n,
      { timeout: 200_000, polling: 100 },
      TOTAL,
    );
    const seen = await page.evaluate(async () => {
      const tap = (window as unknown as { __tap: { parts: Uint8Array[]; bytes: number } }).__tap;
      const all = new Uint8Array(tap.bytes);
      let at = 0;
      for (const part of tap.parts) {
        all.set(part, at);
        at += part.length;
      }
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
      const term = document.querySelector<HTMLElement>('.term[data-channel="1"]')!;
      return {
        bytes: tap.bytes,
        sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
        written: Number(term.dataset.written),
        skipped: term.dataset.skipped ?? null,
      };
    });
    expect(seen).toEqual({ bytes: TOTAL, sha256: want, written: TOTAL, skipped: null });
    expect(errors).toEqual([]);
  }, 300_000);
});
