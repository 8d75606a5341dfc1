import { existsSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { describe, it } from "vitest";
import { infraRequired } from "../helpers/infra.js";

/** The system's Chromium (Debian's `chromium` package); SPOOL_TEST_CHROMIUM points elsewhere. */
export const CHROMIUM = process.env.SPOOL_TEST_CHROMIUM ?? "/usr/bin/chromium";

export function browserMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set SPOOL_TEST_CHROMIUM)`;
}

/** A describe block that needs a browser: skipped with the reason printed when none is installed, failing under SPOOL_TEST_INFRA=required. */
export function describeWithBrowser(name: string, body: () => void): void {
  const missing = browserMissing();
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

export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox refuses to run as root (CI containers); anywhere else it stays on.
    args: [...(process.getuid?.() === 0 ? ["--no-sandbox"] : []), "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,900"],
    defaultViewport: { width: 1440, height: 900 },
  });
}

/** What `spool open` does: a one-time code from the server (with the token), in the page's link. */
export async function signInLink(server: { port: number; token: string }, extra: Record<string, string> = {}): Promise<string> {
  const base = `http://127.0.0.1:${server.port}/`;
  const response = await fetch(`${base}session/code`, { method: "POST", headers: { Authorization: `Bearer ${server.token}` } });
  if (response.status !== 201) throw new Error(`minting a code failed: HTTP ${response.status}`);
  const { code } = (await response.json()) as { code: string };
  return `${base}#${new URLSearchParams({ code, ...extra })}`;
}

/** A page in a fresh browser context (its own cookies: another person, another screen), signed in. */
export async function signedInPage(browser: Browser, server: { port: number; token: string }, extra: Record<string, string> = {}): Promise<Page> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.goto(await signInLink(server, extra));
  await page.waitForSelector(".conn-open");
  return page;
}

/** Text of the visible rows of a channel's terminal. */
export function terminalText(page: Page, channel: number): Promise<string> {
  return page.$eval(`.term[data-channel="${channel}"] .xterm-rows`, (rows) => rows.textContent ?? "");
}
