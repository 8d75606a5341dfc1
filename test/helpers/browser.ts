import { existsSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StartOptions } from "../../src/server/server.js";
import { infraRequired } from "./infra.js";
import { ScriptedModel } from "./scripted-model.js";
import { startTestServer, type TestServer } from "./server.js";

/**
 * The system's Chromium: Debian's `chromium-headless-shell` where it is installed, else its `chromium`;
 * SPOOL_TEST_CHROMIUM points elsewhere. The headless shell is the same Blink and V8 without the desktop browser's
 * windows, toolbars and tab strips, which full Chromium builds and draws for every browser context even headless:
 * a context that opens the page costs ~0.3 s of CPU there against ~0.6 in `chromium` (the suite's browser tests
 * open ~200; bench/history/README.md).
 */
const HEADLESS_SHELL = "/usr/bin/chromium-headless-shell";
export const CHROMIUM = process.env.SPOOL_TEST_CHROMIUM ?? (existsSync(HEADLESS_SHELL) ? HEADLESS_SHELL : "/usr/bin/chromium");
/**
 * Full Chromium (Debian's `chromium`; SPOOL_TEST_DESKTOP_CHROMIUM points elsewhere), for what only a desktop browser
 * does: a tab that another tab puts in the background, and a notification permission not yet asked ("default";
 * the headless shell denies it).
 */
export const DESKTOP_CHROMIUM = process.env.SPOOL_TEST_DESKTOP_CHROMIUM ?? "/usr/bin/chromium";

/** Which Chromium a test needs: the headless one (CHROMIUM), or the desktop one (DESKTOP_CHROMIUM). */
export type BrowserKind = "headless" | "desktop";
const executable = (kind: BrowserKind) => (kind === "desktop" ? DESKTOP_CHROMIUM : CHROMIUM);

export function browserMissing(kind: BrowserKind = "headless"): string | null {
  const path = executable(kind);
  if (existsSync(path)) return null;
  return kind === "desktop"
    ? `no desktop Chromium at ${path} (apt-get install chromium, or set SPOOL_TEST_DESKTOP_CHROMIUM)`
    : `no Chromium at ${path} (apt-get install chromium-headless-shell or chromium, or set SPOOL_TEST_CHROMIUM)`;
}

/** A describe block that needs a browser: skipped with the reason printed when none is installed, failing under SPOOL_TEST_INFRA=required. */
export function describeWithBrowser(name: string, body: () => void, kind: BrowserKind = "headless"): void {
  const missing = browserMissing(kind);
  if (missing && infraRequired) {
    describe(name, () =>
      it("needs Chromium", () => {
        throw new Error(`SPOOL_TEST_INFRA=required but ${missing}`);
      }),
    );
    return;
  }
  if (missing) {
    console.warn(`skipping "${name}": ${missing}`);
    describe.skip(name, body);
    return;
  }
  describe(name, body);
}

/**
 * Chromium's own pages a test never looks at. Headless Chromium 156 still makes, for every window (a browser context's
 * first page), the address bar's suggestion popups as WebUI pages in renderers of their own: each used ~10% of a core
 * while the test's page sat idle (measured: two of them ~1 s of CPU each per 10 s; with these features off the browser
 * loads a page for ~45% less CPU, and an idle page's browser and renderers use ~0.6 s per 10 s instead of ~2.5).
 */
const QUIET_CHROME = "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup";

export function launchBrowser(kind: BrowserKind = "headless"): Promise<Browser> {
  const path = executable(kind);
  return puppeteer.launch({
    executablePath: path,
    // The headless shell is Chromium's old headless mode as a program of its own: puppeteer calls it "shell".
    headless: path.includes("headless-shell") ? "shell" : true,
    // Chromium's sandbox refuses to run as root (CI containers); anywhere else it stays on.
    args: [...(process.getuid?.() === 0 ? ["--no-sandbox"] : []), "--disable-gpu", "--disable-dev-shm-usage", QUIET_CHROME, "--window-size=1440,900"],
    defaultViewport: { width: 1440, height: 900 },
  });
}

const shared = new Map<BrowserKind, Promise<Browser>>();

/**
 * One Chromium for all the browser tests of a worker (the files of a worker share its modules: isolate is off), each
 * test in browser contexts of its own (own cookies and storage: another person, another screen), closed after it. A
 * launch and its close cost ~2.7 s of CPU and 3-8 s of wall time here; 20 files launched one each. The browser
 * ends with the worker (its pipe closes); one that crashed or was closed is launched again.
 */
export function sharedBrowser(kind: BrowserKind = "headless"): Promise<Browser> {
  const running = shared.get(kind);
  if (running) return running;
  const started = launchBrowser(kind);
  shared.set(kind, started);
  const forget = () => shared.get(kind) === started && shared.delete(kind);
  started.then((browser) => browser.once("disconnected", forget), forget);
  return started;
}

/** Closes every browser context but the default one: what a file opened in the shared browser. */
export async function closeContexts(browser: Browser): Promise<void> {
  if (!browser.connected) return;
  for (const context of browser.browserContexts()) if (context !== browser.defaultBrowserContext() && !context.closed) await context.close();
}

/** What `spool open` does: a one-time code from the server (with the token), in the page's link. */
export async function signInLink(server: { port: number; token: string }, extra: Record<string, string> = {}): Promise<string> {
  const base = `http://127.0.0.1:${server.port}/`;
  const response = await fetch(`${base}session/code`, { method: "POST", headers: { Authorization: `Bearer ${server.token}` } });
  if (response.status !== 201) throw new Error(`minting a code failed: HTTP ${response.status}`);
  const { code } = (await response.json()) as { code: string };
  return `${base}#${new URLSearchParams({ code, ...extra })}`;
}

/**
 * Installed before a page loads (`evaluateOnNewDocument`): what its sockets receive can be held back, as on a slow
 * link, and then delivered in order. `holdMessages` / `releaseMessages` switch it; what the page sends is never held.
 */
export function messageHold(): void {
  type Hold = { on: boolean; queue: (() => void)[] };
  const hold: Hold = { on: false, queue: [] };
  (window as unknown as { __hold: Hold }).__hold = hold;
  const add = WebSocket.prototype.addEventListener;
  WebSocket.prototype.addEventListener = function (this: WebSocket, type: string, listener: unknown, options?: unknown) {
    if (type !== "message" || typeof listener !== "function") return add.call(this, type, listener as EventListener, options as AddEventListenerOptions);
    const held = function (this: WebSocket, event: Event) {
      if (hold.on) hold.queue.push(() => (listener as EventListener).call(this, event));
      else (listener as EventListener).call(this, event);
    };
    return add.call(this, type, held, options as AddEventListenerOptions);
  } as typeof WebSocket.prototype.addEventListener;
}

/** From now on the page's sockets' messages wait (the page must have loaded with `messageHold`). */
export function holdMessages(page: Page): Promise<void> {
  return page.evaluate(() => {
    (window as unknown as { __hold: { on: boolean } }).__hold.on = true;
  });
}

/** Delivers what was held, in the order it came, and stops holding; resolves with how many messages that was. */
export function releaseMessages(page: Page): Promise<number> {
  return page.evaluate(() => {
    const hold = (window as unknown as { __hold: { on: boolean; queue: (() => void)[] } }).__hold;
    hold.on = false;
    const held = hold.queue.splice(0);
    for (const deliver of held) deliver();
    return held.length;
  });
}

/** A page in a fresh browser context (its own cookies: another person, another screen), signed in. */
export async function signedInPage(
  browser: Browser,
  server: { port: number; token: string },
  extra: Record<string, string> = {},
  before?: () => void,
): Promise<Page> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  if (before) await page.evaluateOnNewDocument(before);
  await page.goto(await signInLink(server, extra));
  await page.waitForSelector(".conn-open");
  return page;
}

/** Text of the visible rows of a channel's terminal. */
export function terminalText(page: Page, channel: number): Promise<string> {
  return page.$eval(`.term[data-channel="${channel}"] .xterm-rows`, (rows) => rows.textContent ?? "");
}

/** Navigates a signed-in page to `#/project/run/path…` (each part URI-encoded). */
export function go(page: Page, route: string[]): Promise<string> {
  return page.evaluate((hash) => (location.hash = hash), `#/${route.map(encodeURIComponent).join("/")}`);
}

/**
 * Clicks (or, on a touch screen, taps) the element `selector` names, as a person would: one the page re-drew between
 * the lookup and the click (its card replaced as the run's state came in: "Node is detached from document") is looked
 * up again and clicked, at most five times.
 */
export async function press(page: Page, selector: string, how: "click" | "tap" = "click"): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await (how === "tap" ? page.tap(selector) : page.click(selector));
      return;
    } catch (error) {
      if (attempt >= 5 || !/detached|not clickable|not an Element/i.test(String(error))) throw error;
      await page.waitForSelector(selector);
    }
  }
}

/** The text of the first element matching `selector`. */
export function text(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (el) => el.textContent ?? "");
}

/**
 * The selector of a proposal's card in the project the page shows (the queue also holds other projects' cards, marked
 * other-project, whose paths may be the same).
 */
export const card = (path: string) => `.proposal:not(.other-project)[data-path="${path}"]`;

/**
 * Waits until a channel's terminal shows `needle` on its rows, as a person watching it would: xterm.js draws no rows
 * while its terminal is out of the viewport, so a terminal that is not in view is scrolled into it (said on the
 * console: the page moved it). When the needle never shows, the error says where the output stopped: received by the
 * page (the connection), parsed by xterm.js (the page's frames), or drawn (its rows, where the terminal is).
 *
 * A needle `{ label, atLeast }` is met by a row `label N` with N ≥ atLeast: for output still coming, whose rows
 * scroll by (ten rows: "warn 3" is in view only while warn 30-39 are, and a wait that began a moment late missed it).
 */
export async function waitTerminal(page: Page, channel: number, needle: string | { label: string; atLeast: number }): Promise<void> {
  const before = await terminalState(page, channel).catch(() => null);
  try {
    await page.waitForFunction(
      (ch, s) => {
        const term = document.querySelector(`.term[data-channel="${ch}"]`);
        if (!term) return false;
        const box = term.getBoundingClientRect();
        if (box.height > 0 && (box.bottom <= 0 || box.top >= innerHeight)) {
          term.scrollIntoView({ block: "nearest" });
          const moved = window as unknown as { spoolTestScrolled?: string[] };
          (moved.spoolTestScrolled ??= []).push(`channel ${ch} at ${Math.round(box.top)}-${Math.round(box.bottom)} of ${innerHeight}`);
        }
        const shown = term.querySelector(".xterm-rows")?.textContent ?? "";
        if (typeof s === "string") return shown.includes(s);
        for (const m of shown.matchAll(/(\S+) (\d+)/g)) if (m[1] === s.label && Number(m[2]) >= s.atLeast) return true;
        return false;
      },
      {},
      channel,
      needle,
    );
  } catch (error) {
    const after = await terminalState(page, channel).catch((e: unknown) => `unreadable: ${String(e)}`);
    throw new Error(
      `channel ${channel} never showed ${JSON.stringify(needle)}\n  when the wait began: ${JSON.stringify(before)}\n  when it gave up: ${JSON.stringify(after)}`,
      {
        cause: error,
      },
    );
  }
  const scrolled = await page.evaluate(() => (window as unknown as { spoolTestScrolled?: string[] }).spoolTestScrolled?.splice(0) ?? []).catch(() => []);
  if (scrolled.length > 0) console.warn(`waitTerminal(${JSON.stringify(needle)}): the terminal was out of view and scrolled into it: ${scrolled.join("; ")}`);
}

/** What a channel's terminal received, parsed and shows, with the page's state: for a failure's message. */
function terminalState(page: Page, channel: number): Promise<Record<string, unknown>> {
  return page.evaluate((ch) => {
    const term = document.querySelector<HTMLElement>(`.term[data-channel="${ch}"]`);
    const rows = term?.querySelector(".xterm-rows")?.textContent ?? null;
    return {
      at: new Date().toISOString(),
      visibility: document.visibilityState,
      connection: document.querySelector(".conn")?.className ?? null,
      route: location.hash,
      terminal: term ? { ...term.dataset } : null,
      // xterm.js draws no rows while its terminal is out of the viewport (its IntersectionObserver): where it is.
      box: term ? (({ top, bottom, height }) => ({ top, bottom, height }))(term.getBoundingClientRect()) : null,
      viewport: { height: innerHeight, scrollY },
      lastRows: rows === null ? null : rows.slice(-160),
      toasts: [...document.querySelectorAll(".toast")].map((t) => t.textContent),
    };
  }, channel);
}

export interface BrowserHarnessOptions {
  /** A scripted model (a real HTTP server), which the server knows as the model `test`; reset after every test. */
  model?: boolean;
  /** How the server starts; `env` adds to the model's. */
  server?: StartOptions;
  /** Which Chromium: the headless one unless asked (describeWithBrowser's block must ask for the same). */
  browser?: BrowserKind;
}

/** One Spool server, one Chromium and (when asked) one scripted model for a describe block; pages per test. */
export interface BrowserHarness {
  readonly ts: TestServer;
  readonly browser: Browser;
  /** The scripted model (BrowserHarnessOptions.model). */
  readonly model: ScriptedModel;
  /**
   * A page in a fresh browser context (its own cookies: another person, another screen), signed in on `project`:
   * `before` runs in it ahead of the page's own script, `route` is where it goes once connected. Its script errors
   * fail the test; it closes after the test.
   */
  open(project: string, options?: { before?: string; route?: string[] }): Promise<Page>;
  /** A page in a fresh browser context, not signed in, watched and closed like `open`'s. */
  blank(): Promise<Page>;
}

/**
 * The browser harness (issue 41): call it inside a `describeWithBrowser` block. It starts the model and the server
 * before the block's tests and stops them after, and takes the worker's Chromium (`sharedBrowser`), closing the
 * contexts the block opened; after each test it closes that test's pages, resets the model, and fails the test if a
 * page threw.
 */
export function useBrowser(options: BrowserHarnessOptions = {}): BrowserHarness {
  let ts: TestServer | undefined;
  let browser: Browser | undefined;
  let model: ScriptedModel | undefined;
  const pages: Page[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    if (options.model) model = await ScriptedModel.start();
    const modelEnv = model ? { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl } : {};
    ts = await startTestServer({ ...options.server, env: { ...modelEnv, ...options.server?.env } });
    browser = await sharedBrowser(options.browser);
  }, 60_000);
  afterAll(async () => {
    if (browser) await closeContexts(browser);
    await ts?.stop();
    await model?.close();
  });
  afterEach(async () => {
    for (const page of pages.splice(0)) {
      // A test may have closed its page's context itself.
      if (!page.browserContext().closed) await page.browserContext().close();
    }
    model?.reset();
    expect(errors.splice(0)).toEqual([]);
  });

  const started = <T>(what: string, value: T | undefined): T => {
    if (value === undefined) throw new Error(`the browser harness has no ${what} (before its beforeAll, or not asked for)`);
    return value;
  };
  const blank = async (): Promise<Page> => {
    const context = await started("browser", browser).createBrowserContext();
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on("pageerror", (error) => errors.push(String(error)));
    pages.push(page);
    return page;
  };
  return {
    get ts() {
      return started("server", ts);
    },
    get browser() {
      return started("browser", browser);
    },
    get model() {
      return started("scripted model", model);
    },
    blank,
    async open(project, { before, route } = {}) {
      const page = await blank();
      if (before) await page.evaluateOnNewDocument(before);
      await page.goto(await signInLink(started("server", ts).server, { project }));
      await page.waitForSelector(".conn-open");
      if (route && route.length > 0) await go(page, [project, ...route]);
      return page;
    },
  };
}
