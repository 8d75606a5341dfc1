// The web view under a fast producer: a `spool serve` process whose embedded runner runs a writer at a
// fixed rate (build-like lines, some coloured), and the page following it live in the system Chromium.
// Prints, per rate: what was stored and drawn (and skipped to keep up), the page's frame intervals and
// long tasks while it streamed, how long a click waited to be handled, how far behind what was stored the
// page was at worst (sampled every 250 ms) and when the producer finished, and its JS heap at the end.
//   npx tsx bench/web-live.ts [MB/s,…] [seconds]      (default 10 and 10)
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { machine, percentile, startServerProcess } from "./common.js";

const rates = (process.argv[2] ?? "10").split(",").map(Number);
const seconds = Number(process.argv[3] ?? 10);
const chromium = process.env.SPOOL_TEST_CHROMIUM ?? "/usr/bin/chromium";

/** The producer: 64 KiB of numbered build-like lines every tick, paced to the rate, then a last line. */
const WRITER = `
const [rate, seconds] = process.argv.slice(2).map(Number);
const tick = 10, perTick = Math.round(rate * 1024 * 1024 * tick / 1000);
let n = 0, sent = 0;
const line = () => { n++; return n % 50 === 0 ? "\\x1b[33mwarning\\x1b[0m: line " + n + " unused variable in src/module_" + (n % 97) + ".c\\n" : "[" + String(n).padStart(8) + "] CC  build/objects/module_" + (n % 997) + ".o  -O2 -Wall -fPIC\\n"; };
const start = Date.now();
const step = () => {
  if (Date.now() - start >= seconds * 1000) { process.stdout.write("END OF OUTPUT\\n"); return; }
  const due = Math.round(((Date.now() - start) / 1000) * rate * 1024 * 1024);
  let out = "";
  while (sent + out.length < due && out.length < perTick * 4) out += line();
  sent += out.length;
  process.stdout.write(out, () => setTimeout(step, tick));
};
step();
`;

/** Installed before the page's own script: frame gaps, long tasks, click delays, in the page. */
const PROBE = `
window.__bench = { gaps: [], long: [], clicks: [], recording: false };
let last = performance.now();
requestAnimationFrame(function frame(now) { if (window.__bench.recording) window.__bench.gaps.push(now - last); last = now; requestAnimationFrame(frame); });
new PerformanceObserver((list) => { for (const e of list.getEntries()) if (window.__bench.recording) window.__bench.long.push(e.duration); }).observe({ type: "longtask" });
document.addEventListener("click", (event) => { if (event.target.id === "bench-probe") window.__bench.clicks.push(performance.now() - event.timeStamp); }, true);
`;

console.log(`machine: ${machine()}, ${chromium}`);
const server = await startServerProcess();
const client = await server.connect();
await client.initialize("bench", { root: server.root });
const writer = join(server.home, "writer.cjs");
writeFileSync(writer, WRITER);
const port = new URL(server.url).port;
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: [
    ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
    "--disable-gpu",
    "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup",
    "--enable-precise-memory-info",
    "--window-size=1440,900",
  ],
  defaultViewport: { width: 1440, height: 900 },
});

const rows: string[] = [];
for (const rate of rates) {
  const run = `rate-${rate}`;
  await client.request("run/create", { alias: run });
  const { path } = await client.request("proposal/create", { run, tool: "sh", command: `${process.execPath} ${writer} ${rate} ${seconds}` });
  const code = (
    (await (await fetch(`http://127.0.0.1:${port}/session/code`, { method: "POST", headers: { Authorization: `Bearer ${server.token}` } })).json()) as {
      code: string;
    }
  ).code;
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.evaluateOnNewDocument(PROBE);
  await page.goto(`http://127.0.0.1:${port}/#code=${code}&project=bench`);
  await page.waitForSelector(".conn-open");
  await page.evaluate(
    `(() => { const b = document.createElement("button"); b.id = "bench-probe"; b.textContent = "probe"; b.style.cssText = "position:fixed;left:4px;bottom:4px;z-index:99"; document.body.append(b); })()`,
  );
  await page.evaluate(`location.hash = ${JSON.stringify(`#/bench/${run}/${encodeURIComponent(path)}`)}`);

  const finished = new Promise<number>((resolve) => client.on("stream/finished", (n: { path: string }) => n.path === path && resolve(Date.now())));
  const started = Date.now();
  await client.request("run/resolve", { run, path, decision: "accept" });
  await page.waitForSelector('.term[data-channel="1"]');
  await page.evaluate("window.__bench.recording = true");
  let done = false;
  void finished.then(() => (done = true));
  // BENCH_TRACE=1 prints the positions every sample, with a Node watcher's beside the page's (where a backlog sits).
  let nodeReceived = 0;
  const watcher = process.env.BENCH_TRACE ? await server.connect() : null;
  if (watcher) {
    await watcher.initialize("bench");
    watcher.on("stream/data", (d: { chunk: string }) => (nodeReceived += Buffer.from(d.chunk, "base64").length));
    await watcher.request("stream/subscribe", { run, path, channel: 1, encoding: "base64" });
  }
  const channelPath = path.replace(/^log:\/\/(turn_\d+)\/sh\/(.*)$/, "sh://$1/$2_1");
  const behind: number[] = [];
  while (!done) {
    await page.click("#bench-probe");
    const stored = (await client.request("entry/get", { run, path: channelPath, tail: 1 })).bytes;
    const shown = (await page.evaluate(
      `(() => { const el = document.querySelector('.term[data-channel="1"]'); return [Number(el.dataset.received ?? 0), Number(el.dataset.written ?? 0) + Number(el.dataset.skipped ?? 0)]; })()`,
    )) as number[];
    if (watcher)
      console.log(`${((Date.now() - started) / 1000).toFixed(1)} s stored ${stored} node watcher ${nodeReceived} page received ${shown[0]} drawn ${shown[1]}`);
    behind.push(stored - shown[1]!);
    await new Promise((r) => setTimeout(r, 250));
  }
  const finishedAt = await finished;
  await page.evaluate("window.__bench.recording = false");
  await page.waitForFunction(() => document.querySelector('.term[data-channel="1"] .xterm-rows')?.textContent?.includes("END OF OUTPUT"), { timeout: 600_000 });
  const endLag = Date.now() - finishedAt;
  watcher?.close();
  const channel = await client.request("entry/get", { run, path: channelPath, tail: 1 });
  const page_ = (await page.evaluate(`(() => {
    const el = document.querySelector('.term[data-channel="1"]');
    return { written: Number(el.dataset.written ?? 0), skipped: Number(el.dataset.skipped ?? 0), b: window.__bench, heap: performance.memory ? performance.memory.usedJSHeapSize : 0 };
  })()`)) as { written: number; skipped: number; heap: number; b: { gaps: number[]; long: number[]; clicks: number[] } };
  const gaps = page_.b.gaps.sort((a, b) => a - b);
  const clicks = page_.b.clicks.sort((a, b) => a - b);
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  rows.push(
    [
      String(rate).padStart(6),
      (channel.bytes / 1024 / 1024 / ((finishedAt - started) / 1000)).toFixed(1).padStart(10),
      mb(channel.bytes).padStart(9),
      mb(page_.written).padStart(8),
      mb(page_.skipped).padStart(8),
      `${percentile(gaps, 50).toFixed(0)}/${percentile(gaps, 95).toFixed(0)}/${(gaps.at(-1) ?? 0).toFixed(0)}`.padStart(16),
      `${page_.b.long.length}/${Math.max(0, ...page_.b.long).toFixed(0)}`.padStart(10),
      `${percentile(clicks, 50).toFixed(0)}/${percentile(clicks, 95).toFixed(0)}/${(clicks.at(-1) ?? 0).toFixed(0)}`.padStart(14),
      mb(Math.max(0, ...behind)).padStart(10),
      String(endLag).padStart(11),
      (page_.heap / 1024 / 1024).toFixed(0).padStart(8),
    ].join(" "),
  );
  await context.close();
}

console.log(`${seconds} s per rate; frame and click figures are p50/p95/max in ms, long tasks count/max ms`);
console.log(" MB/s  stored_MB/s  stored_MB  drawn_MB skip_MB  frame_gap_ms    long_tasks  click_delay_ms  behind_MB  end_lag_ms  heap_MB");
for (const row of rows) console.log(row);
client.close();
await browser.close();
await server.stop();
