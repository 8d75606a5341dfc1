import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { infraRequired } from "../helpers/infra.js";
import { ensureRun } from "../helpers/proposals.js";
import { runTool } from "../helpers/runners.js";
import { eventually, tempDir } from "../helpers/server.js";

/**
 * A real Prometheus (Debian's package, scripts/test-infra.sh) scraping a real `spool serve` with a viewer's token (its
 * own, as docs/production.md gives it) from a credentials file: after a known number of bytes streamed and proposals decided, PromQL over its HTTP API says so.
 */

const repo = fileURLToPath(new URL("../..", import.meta.url));
const PROMETHEUS = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].find((p) => existsSync(p));
const missing = PROMETHEUS ? null : "prometheus is not installed (apt-get install prometheus; scripts/test-infra.sh)";
if (missing && !infraRequired) console.warn(`skipping the Prometheus test: ${missing}`);
const describePrometheus = missing && !infraRequired ? describe.skip : describe;

/** A loopback port nobody listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function started(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (data: Buffer) => {
      out += data.toString();
      const match = pattern.exec(out);
      if (match) resolve(match);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}:\n${out}`)));
  });
}

const stop = (child: ChildProcess | undefined) =>
  new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve(null);
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });

describePrometheus("Prometheus scrapes spool serve", () => {
  let dir: string;
  let spool: ChildProcess | undefined;
  let prometheus: ChildProcess | undefined;
  let spoolUrl: string;
  let api: string;

  beforeAll(async () => {
    if (missing) throw new Error(`SPOOL_TEST_INFRA=required but ${missing}`);
    dir = tempDir("spool-prometheus-");
    const home = join(dir, "home");
    spool = spawn(process.execPath, [join(repo, "bin", "spool.js"), "serve", "--home", home, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    spoolUrl = (await started(spool, /Spool listening on (ws:\/\/\S+)/, "spool serve"))[1]!;
    const target = new URL(spoolUrl.replace(/^ws:/, "http:")).host;
    // As docs/production.md says: Prometheus gets a viewer's credential of its own, never the home's token.
    const admin = await SpoolClient.connect(spoolUrl, { token: readFileSync(join(home, "token"), "utf8").trim() });
    const viewer = await admin.call("token/create", { name: "prometheus", role: "viewer" });
    admin.close();
    writeFileSync(join(dir, "spool-token"), `${viewer.token}\n`, { mode: 0o600 });
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: spool",
        "    scrape_interval: 250ms",
        "    scrape_timeout: 200ms",
        "    authorization:",
        "      type: Bearer",
        `      credentials_file: ${join(dir, "spool-token")}`,
        "    static_configs:",
        `      - targets: ["${target}"]`,
        "",
      ].join("\n"),
    );
    prometheus = spawn(
      PROMETHEUS!,
      [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    await started(prometheus, /Server is ready to receive web requests/, "prometheus");
  }, 60_000);
  afterAll(async () => {
    await stop(prometheus);
    await stop(spool);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** One PromQL instant query's single value, or null while it has none. */
  const query = async (promql: string): Promise<number | null> => {
    const response = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { status: string; data: { result: { value: [number, string] }[] }; error?: string };
    if (body.status !== "success") throw new Error(`${promql}: ${body.error}`);
    const [first] = body.data.result;
    return first ? Number(first.value[1]) : null;
  };
  /** Polls Prometheus until the query gives `expected` (each scrape every 250 ms may bring it). */
  const expectQuery = async (promql: string, expected: number) => {
    let last: number | null = null;
    await eventually(
      async () => {
        last = await query(promql);
        return last === expected;
      },
      20_000,
      `${promql} = ${expected}`,
    ).catch((error: Error) => {
      throw new Error(`${error.message} (last: ${last})`);
    });
  };

  it("reads the bytes streamed and the decisions made, through PromQL", async () => {
    await expectQuery('up{job="spool"}', 1);
    const client = await SpoolClient.connect(spoolUrl, { token: readFileSync(join(dir, "home", "token"), "utf8").trim() });
    try {
      // The project's root apart from the home (a root that holds the home is refused).
      const root = join(dir, "project");
      mkdirSync(root, { recursive: true });
      await client.initialize("scraped", { root });
      await ensureRun(client, "r");
      const { path } = await client.call("proposal/create", { run: "r", tool: "sh", command: "true" });
      await expectQuery('spool_proposals_pending{project="scraped"}', 1);
      await client.call("run/resolve", { run: "r", path, decision: "reject" });
      await runTool(client, "r", "sh", "head -c 100000 /dev/zero");
      await runTool(client, "r", "sh", "head -c 2345 /dev/zero; head -c 55 /dev/zero >&2");
    } finally {
      client.close();
    }
    await expectQuery("spool_stream_bytes_total", 102_400);
    await expectQuery('sum(spool_decisions_total{outcome="accept",by="person"})', 2);
    await expectQuery('sum(spool_decisions_total{outcome="reject"})', 1);
    await expectQuery("spool_proposal_wait_seconds_count", 3);
    await expectQuery('spool_proposals_pending{project="scraped"}', 0);
    await expectQuery("spool_append_seconds_count - spool_stream_chunks_total", 0);
    expect(await query("process_resident_memory_bytes")).toBeGreaterThan(0);
  });
});
