// Takes the README's screenshots of the web view: a real server with a scripted model, real commands
// on the embedded local runner, the page in the system Chromium. Not a test: run it by hand.
//   npm run screenshots [-- out-dir]        (default docs/; npx tsx scripts/screenshots.ts [out-dir])
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { launchBrowser, signedInPage } from "../test/helpers/browser.js";
import { ScriptedModel } from "../test/helpers/scripted-model.js";
import { eventually, startTestServer } from "../test/helpers/server.js";

const out = resolve(process.argv[2] ?? "docs");
mkdirSync(out, { recursive: true });
const model = await ScriptedModel.start();
const ts = await startTestServer({ env: { SPOOL_MODEL_SONNET: "openai/claude-sonnet", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 3_000 } });
const root = join(ts.root, "webshop");
mkdirSync(root);

const script = (name: string, body: string) => {
  writeFileSync(join(root, name), `#!/bin/sh\n${body}`);
  chmodSync(join(root, name), 0o755);
};
script(
  "run-tests.sh",
  `ms=37
for t in cart checkout catalog search accounts payments shipping; do
  ms=$(( (ms * 7) % 290 + 12 ))
  printf '\\033[32m PASS \\033[0m test/%s.test.ts (%d ms)\\n' "$t" $ms
done
printf '\\033[31m FAIL \\033[0m spec/invoice.test.ts\\n'
printf '  ● invoice › rounds VAT per line\\n\\n    expected 119.99 to equal 120.00\\n\\n      at spec/invoice.test.ts:42:31\\n'
echo "npm warn deprecated glob@7.2.3: Glob versions prior to v9 are no longer supported" >&2
printf '\\nTests: \\033[31m1 failed\\033[0m, \\033[32m7 passed\\033[0m, 8 total\\n'
exit 1
`,
);
script(
  "build.sh",
  `i=0
while [ $i -lt 100000 ]; do
  i=$((i+1))
  printf '\\033[2m[%5d]\\033[0m \\033[36mCC\\033[0m  build/obj/module_%03d.o   -O2 -Wall -fPIC\\n' $i $((i % 997))
  [ $((i % 40)) -eq 0 ] && printf '\\033[33mwarning:\\033[0m unused variable ‘tmp’ in src/module_%03d.c:%d\\n' $((i % 997)) $((i % 300)) >&2
  sleep 0.02
done
`,
);

const client = await ts.clientIn("webshop");
const webshop = await ts.client();
await webshop.initialize("webshop-app", { root });

// A run with a model: a prompt, the model's answer and a tool call whose command ran.
model.reply(
  { text: "I'll run the test suite first and look at what fails. ", delayMs: 20, tools: [{ name: "sh", arguments: { command: "./run-tests.sh" } }] },
  {
    text: "One test fails: `invoice › rounds VAT per line` expects 120.00 but gets 119.99. The VAT is rounded once on the total instead of per line; I'd round each line in `lib/invoice.ts` before summing.",
    delayMs: 15,
  },
);
await webshop.call("run/create", {
  alias: "fix-tests",
  model: "sonnet",
  prompt: "Run the tests and tell me why the invoice test fails",
  title: "Why does the invoice test fail?",
});
const first = await new Promise<{ path: string }>((r) => webshop.on("run/proposal", (p: { run: string; path: string }) => p.run === "fix-tests" && r(p)));
await webshop.call("run/resolve", { run: "fix-tests", path: first.path, decision: "accept" });
await eventually(async () => (await webshop.call("run/get", { run: "fix-tests" })).run.status === 200, 30_000, "the run to finish");

// A long build, live.
await webshop.call("run/create", { alias: "nightly", title: "Nightly build" });
const build = await webshop.call("proposal/create", { run: "nightly", tool: "sh", command: "./build.sh" });
await webshop.call("run/resolve", { run: "nightly", path: build.path, decision: "accept" });

// Proposals waiting for a decision, one with an escape sequence hidden in its environment.
await webshop.call("run/create", { alias: "release", title: "Release 2.4 to staging" });
await webshop.call("proposal/create", {
  run: "release",
  tool: "sh",
  command: "./deploy.sh --env staging --tag v2.4.0",
  cwd: ".",
  env: { DEPLOY_REGION: "eu-west-1", NOTE: "ok\u001b[2K\rrm -rf /" },
});
await webshop.call("proposal/create", { run: "nightly", tool: "sh", command: "du -sh build/ && ls -la build/obj | head -20" });
await client.call("run/create", { alias: "scratch" });

const browser = await launchBrowser();
const page = await signedInPage(browser, ts.server, { project: "webshop-app" });
const shot = async (name: string) => {
  await page.screenshot({ path: join(out, name) });
  console.log(join(out, name));
};
await page.waitForSelector(".proposal");
await shot("web-proposals.png");

await page.evaluate((hash) => (location.hash = hash), `#/webshop-app/fix-tests/${encodeURIComponent(first.path)}`);
await page.waitForFunction(() => document.querySelector('.term[data-channel="1"] .xterm-rows')?.textContent?.includes("8 total"));
await page.waitForSelector(".conversation .msg.assistant");
await shot("web-run.png");

await page.evaluate((hash) => (location.hash = hash), `#/webshop-app/nightly/${encodeURIComponent(build.path)}`);
await page.waitForFunction(() => document.querySelector('.term[data-channel="2"] .xterm-rows')?.textContent?.includes("warning"), { timeout: 60_000 });
await eventually(async () => Number(await page.$eval('.term[data-channel="1"]', (el) => (el as HTMLElement).dataset.written ?? 0)) > 40_000, 30_000, "output");
await shot("web-live.png");

await browser.close();
await ts.stop();
await model.close();
