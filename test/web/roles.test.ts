import type { Page } from "puppeteer-core";
import { expect, it } from "vitest";
import { card, describeWithBrowser, go, signInLink, text, useBrowser } from "../helpers/browser.js";

/**
 * Issue 45 (7): the page shows who is signed in, and draws no control its principal's role cannot use — a viewer
 * sees no Approve, Reject or Cancel (nor Abort, prompt or input); an agent no Approve or Reject (nor Abort: run/abort needs person).
 */
describeWithBrowser("the page's controls follow the signed-in principal's role, in Chromium", () => {
  const web = useBrowser();

  async function signedInWith(token: string, route: string[]): Promise<Page> {
    const page = await web.blank();
    await page.goto(await signInLink({ port: web.ts.server.port, token }, { project: route[0]! }));
    await page.waitForSelector(".conn-open");
    await go(page, route);
    return page;
  }

  it("a viewer sees the proposal and the running command without Approve, Reject or Cancel; an agent without Approve or Reject; a person with all", async () => {
    const admin = await web.ts.clientIn("roles");
    await admin.call("run/create", { alias: "work" });
    // A command running (the runner "self" is this client: it stays running until the test ends it).
    const running = await admin.call("proposal/create", { run: "work", tool: "sh", sandbox: "full", command: "sleep 600" });
    await admin.call("run/resolve", { run: "work", path: running.path, decision: "accept", runner: "self" });
    const pending = await admin.call("proposal/create", { run: "work", tool: "sh", command: "echo decide me" });
    const tokens: Record<string, string> = {};
    for (const [name, role] of [
      ["watcher", "viewer"],
      ["helper", "agent"],
      ["alice", "person"],
    ] as const)
      tokens[role] = (await admin.call("token/create", { name, role })).token;

    const shown = async (role: string) => {
      const page = await signedInWith(tokens[role]!, ["roles", "work", running.path]);
      await page.waitForSelector(card(pending.path));
      await page.waitForSelector('[data-producer-status="running"]');
      return {
        who: await text(page, ".top .who"),
        whoRole: await page.$eval(".top .who", (el) => (el as HTMLElement).dataset.role),
        approve: (await page.$(`${card(pending.path)} button.approve`)) !== null,
        reject: (await page.$(`${card(pending.path)} button.reject`)) !== null,
        cancel: (await page.$('[data-action="cancel"]')) !== null,
        command: (await text(page, card(pending.path))).includes("$ echo decide me"),
      };
    };
    expect(await shown("viewer")).toEqual({
      who: "watcher · viewer",
      whoRole: "viewer",
      approve: false,
      reject: false,
      cancel: false,
      command: true,
    });
    expect(await shown("agent")).toEqual({ who: "helper · agent", whoRole: "agent", approve: false, reject: false, cancel: true, command: true });
    expect(await shown("person")).toEqual({ who: "alice · person", whoRole: "person", approve: true, reject: true, cancel: true, command: true });
    await admin.call("stream/cancel", { run: "work", path: running.path, reason: "test over" });
  }, 90_000);
});
