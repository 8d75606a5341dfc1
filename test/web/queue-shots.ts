// Screenshots of the page's first view with 1 and 3 proposals waiting, at a desktop's size (1280×800) and a phone's
// (390×844, touch), signed in from a link as a person would be. Not a test: run it by hand to look (issue 53).
//   npx tsx test/web/queue-shots.ts OUT-DIR [PREFIX] [REPO]
// REPO (default: this one) is the tree whose server and page are shown: a checkout of an older commit shows the page before a change.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const out = resolve(process.argv[2] ?? "/tmp/queue-shots");
const prefix = process.argv[3] ?? "after";
const repo = resolve(process.argv[4] ?? fileURLToPath(new URL("../..", import.meta.url)));
mkdirSync(out, { recursive: true });

const { launchBrowser, signInLink } = (await import(join(repo, "test/helpers/browser.ts"))) as typeof import("../helpers/browser.js");
const { startTestServer } = (await import(join(repo, "test/helpers/server.ts"))) as typeof import("../helpers/server.js");

const ts = await startTestServer({ decisionTimeoutMs: 15 * 60_000 });
const client = await ts.clientIn("shop");
await client.call("run/create", { alias: "release", title: "Release 2.4 to staging" });
// The queue spans projects: the third waits in another project than the page opens on.
const docs = await ts.clientIn("docs-site");
await docs.call("run/create", { alias: "publish", title: "Publish the 2.4 notes" });
const proposals = [
  {
    client,
    run: "release",
    command:
      "./deploy.sh --env staging --tag v2.4.0 --notes 'Rounds VAT per line; fixes the invoice totals' && curl -fsS https://staging.example.invalid/health",
    cwd: "deploy/scripts",
  },
  { client, run: "release", command: "du -sh build/ && ls -la build/obj | head -20" },
  { client: docs, run: "publish", command: "npm run build && rsync -a dist/ docs@web.example.invalid:/srv/docs/2.4/" },
];
let made = 0;
const browser = await launchBrowser();
const sizes = [
  { name: "desktop", viewport: { width: 1280, height: 800 } },
  { name: "phone", viewport: { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 } },
];
for (const [count, upTo] of [
  [1, 1],
  [3, 3],
] as const) {
  for (; made < upTo; made++) {
    const { client: into, run, command, cwd } = proposals[made]!;
    await into.call("proposal/create", { run, tool: "sh", command, ...(cwd ? { cwd } : {}) });
  }
  for (const size of sizes) {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport(size.viewport);
    await page.goto(await signInLink({ port: ts.server.port, token: ts.server.token }, { project: "shop" }));
    await page.waitForSelector(".conn-open");
    await page.waitForFunction((n) => document.querySelectorAll(".proposal").length >= n, {}, count);
    await new Promise((r) => setTimeout(r, 500));
    const file = join(out, `${prefix}-${size.name}-${count}.png`);
    await page.screenshot({ path: file });
    console.log(file);
    await context.close();
  }
}
await browser.close();
client.close();
docs.close();
await ts.stop();
