// Takes screenshots of the web view at a phone's size (390×844, touch) and at a desktop's, from a real server with
// proposals waiting, a run with a conversation and commands (running, finished with a big output, cancelled).
// Not a test: run it by hand to look at the page (issue 46).
//   npx tsx test/web/phone-shots.ts OUT-DIR [PREFIX] [REPO]
// REPO (default: this one) is the tree whose server and page are shown: a checkout of an older commit shows the page before a change.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const out = resolve(process.argv[2] ?? "/tmp/phone-shots");
const prefix = process.argv[3] ?? "after";
const repo = resolve(process.argv[4] ?? fileURLToPath(new URL("../..", import.meta.url)));
mkdirSync(out, { recursive: true });

const { launchBrowser, signedInPage } = (await import(join(repo, "test/helpers/browser.ts"))) as typeof import("../helpers/browser.js");
const { ScriptedModel } = (await import(join(repo, "test/helpers/scripted-model.ts"))) as typeof import("../helpers/scripted-model.js");
const { eventually, startTestServer } = (await import(join(repo, "test/helpers/server.ts"))) as typeof import("../helpers/server.js");

const model = await ScriptedModel.start();
const ts = await startTestServer({ env: { SPOOL_MODEL_SONNET: "openai/claude-sonnet", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 1_000 } });
const root = join(ts.root, "shop");
mkdirSync(root);
writeFileSync(
  join(root, "big.sh"),
  '#!/bin/sh\ni=0\nwhile [ $i -lt 220000 ]; do i=$((i+1)); echo "line $i of the big output ........................................................................"; done\n',
);
chmodSync(join(root, "big.sh"), 0o755);

const client = await ts.client();
await client.initialize("shop", { root });

model.reply(
  { text: "I'll look at the disk first. ", delayMs: 10, tools: [{ name: "sh", arguments: { command: "df -h" } }] },
  { text: "The disk has room: nothing to clean up.", delayMs: 10 },
);
await client.call("run/create", { alias: "fix-disk", model: "sonnet", prompt: "Is the disk full?", title: "Check the disk" });
const first = await new Promise<{ path: string }>((r) => client.on("run/proposal", (p: { run: string; path: string }) => p.run === "fix-disk" && r(p)));
await client.call("run/resolve", { run: "fix-disk", path: first.path, decision: "accept" });
await eventually(async () => (await client.call("run/get", { run: "fix-disk" })).run.status === 200, 30_000, "the run to finish");
const accept = async (run: string, command: string) => {
  const { path } = await client.call("proposal/create", { run, tool: "sh", command });
  await client.call("run/resolve", { run, path, decision: "accept" });
  return path;
};
const big = await accept("fix-disk", "./big.sh");
const cancelled = await accept("fix-disk", "sleep 600");
await client.call("stream/cancel", { run: "fix-disk", path: cancelled });
const running = await accept("fix-disk", "sleep 600 # a long one");
await eventually(async () => (await client.call("entry/get", { run: "fix-disk", path: big })).producer?.state === "done", 60_000, "the big output");

await client.call("run/create", { alias: "release", title: "Release 2.4 to staging" });
await client.call("proposal/create", {
  run: "release",
  tool: "sh",
  command:
    "./deploy.sh --env staging --tag v2.4.0 --notes 'Rounds VAT per line; fixes the invoice totals reported by three customers' && curl -fsS https://staging.example.invalid/health",
  cwd: "deploy/scripts",
  env: { DEPLOY_REGION: "eu-west-1", NOTE: "ok\u001b[2K\rrm -rf /" },
});
await client.call("proposal/create", { run: "release", tool: "sh", command: "du -sh build/ && ls -la build/obj | head -20" });

const browser = await launchBrowser();
const page = await signedInPage(browser, ts.server, { project: "shop" });
/** A new viewport may reload the page (touch, mobile): the shots wait until it is connected again. */
const view = async (width: number, height: number, mobile: boolean) => {
  await page.setViewport({ width, height, deviceScaleFactor: 1, isMobile: mobile, hasTouch: mobile });
  await page.waitForSelector(".conn-open");
};
const shot = async (name: string) => {
  const file = join(out, `${prefix}-${name}.png`);
  await page.screenshot({ path: file });
  console.log(file);
};
await view(390, 844, true);
await page.waitForSelector(".proposal");
await shot("phone-project");
await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
const main = await page.$(".main");
await main?.evaluate((el) => el.scrollTo(0, el.scrollHeight));
await shot("phone-project-scrolled");

await page.evaluate((hash) => (location.hash = hash), `#/shop/fix-disk/${encodeURIComponent(running)}`);
await page.waitForSelector(".conversation .msg.assistant");
await page.evaluate(() => window.scrollTo(0, 0));
await shot("phone-run");
await page.$eval(".run-view", (el) => el.scrollIntoView());
await shot("phone-run-header");
await page.evaluate((hash) => (location.hash = hash), `#/shop/fix-disk/${encodeURIComponent(big)}`);
// A script may look at a page that never draws the end: the shot is taken anyway, after a while.
await page
  .waitForFunction(() => document.querySelector('.term[data-channel="1"] .xterm-rows')?.textContent?.includes("220000"), { timeout: 30_000 })
  .catch(() => console.log("the end of the big output was not drawn within 30 s"));
await page.$eval(".producer-detail", (el) => el.scrollIntoView());
await shot("phone-big-output");
await view(1440, 900, false);
await shot("desktop-big-output");
await page.evaluate((hash) => (location.hash = hash), "#/shop");
await page.waitForSelector(".proposal");
await shot("desktop-project");

await browser.close();
await ts.stop();
await model.close();
