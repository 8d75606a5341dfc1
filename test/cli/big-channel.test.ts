import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { type ServeProcess, SPOOL_BIN, spawnServe } from "../helpers/process.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { tempDir } from "../helpers/server.js";
import { streamBuffer } from "../helpers/stream.js";
import { type McpProcess, resultText, startMcp } from "../mcp/harness.js";

const MiB = 1024 * 1024;
const sha = (data: Buffer | Uint8Array) => createHash("sha256").update(data).digest("hex");

/**
 * 100 MiB of output: 2 KiB lines, one line of 20 MiB (longer than a read returns) in the middle, and a last line
 * without its newline — ASCII, so a reader that takes text (MCP) can be byte-exact too.
 */
function bigOutput(): Buffer {
  const width = 2048;
  const before = 20_480; // 40 MiB
  const after = 20_478; // 40 MiB less the last line's 4 KiB
  const out = Buffer.alloc(100 * MiB, "x");
  let at = 0;
  const line = (n: number) => {
    out.write(`${n} `, at);
    at += width;
    out[at - 1] = 10;
  };
  for (let i = 0; i < before; i++) line(i + 1);
  out.write("long ", at);
  at += 20 * MiB;
  out[at - 1] = 10;
  for (let i = 0; i < after; i++) line(before + 2 + i);
  // The rest: a last line without its newline.
  out.write("last ", at);
  return out;
}

/**
 * Issue 38, point 2: every reader that pages reads a 100 MiB channel byte-exact — the client library's helper,
 * `spool tail` (all of it, and --lines through pages of entry/get), and MCP's read_output page by page.
 */
describe("a 100 MiB channel, read by every reader that pages", () => {
  let serve: ServeProcess;
  let client: SpoolClient;
  let home: string;
  let project: string;
  let run: string;
  let log: string;
  let stdout: string;
  const data = bigOutput();
  const digest = sha(data);
  const env = () => ({ SPOOL_HOME: home, SPOOL_SERVER: serve.url });

  beforeAll(async () => {
    const base = tempDir("spool-big-");
    home = join(base, "home");
    project = join(base, "app");
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
    serve = await spawnServe(["--port", "0", "--home", home]);
    client = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await client.initialize(undefined, { root: project, create: true, client: { name: "big", version: "1" } });
    run = "big";
    const made = await proposeAndAccept(client, client, run, "print a lot", { runner: "self" });
    log = made.path;
    stdout = made.stdout;
    // Streamed over the connection as a command's owner would (a runner's binary frames), in 1 MiB chunks.
    await streamBuffer(client, { run, path: log, channel: 1 }, data, { chunkSize: MiB, encoding: "bytes" });
    await client.call("stream/completed", { run, path: log, exit_code: 0 });
    const [entry] = (await client.call("entry/list", { run, pattern: stdout })).entries;
    expect(entry!.bytes).toBe(data.length);
  }, 240_000);
  afterAll(async () => {
    client?.close();
    await serve?.stop();
  });

  it("SpoolClient.readLines: pages of whole lines and the long line in parts, byte-exact", async () => {
    const hash = createHash("sha256");
    const got = await client.readLines(run, stdout, (bytes) => void hash.update(bytes));
    expect(got.bytes).toBe(data.length);
    expect(hash.digest("hex")).toBe(digest);
    // From a line on: the lines after the long one.
    const tailHash = createHash("sha256");
    const from = await client.readLines(run, stdout, (bytes) => void tailHash.update(bytes), { from: 20_482 });
    expect(tailHash.digest("hex")).toBe(sha(data.subarray(20_480 * 2048 + 20 * MiB)));
    expect(from.lines).toBe(20_479);
  }, 120_000);

  for (const args of [[], ["--lines", "100000"]]) {
    it(`spool tail ${args.join(" ")} writes the whole channel`, async () => {
      const file = join(tempDir("spool-big-out-"), "out");
      const fd = openSync(file, "w");
      const child = spawn(process.execPath, [SPOOL_BIN, "tail", run, log, ...args], {
        env: { ...process.env, SPOOL_LOG: "warn", ...env() },
        cwd: project,
        stdio: ["ignore", fd, "pipe"],
      });
      closeSync(fd);
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise((resolve) => child.once("exit", resolve));
      expect(code, stderr).toBe(0);
      const out = readFileSync(file);
      expect(out.length).toBe(data.length);
      expect(sha(out)).toBe(digest);
    }, 120_000);
  }

  it("MCP read_output, raw, page by page from what each result says of the rest", async () => {
    let mcp: McpProcess | undefined;
    try {
      mcp = await startMcp({ args: ["--server", serve.url, "--project", project], env: { SPOOL_HOME: home } });
      const hash = createHash("sha256");
      let bytes = 0;
      let next: { line: number; offset?: number } | null = { line: 1 };
      for (let calls = 0; next && calls < 100; calls++) {
        const result = await mcp.client.callTool({ name: "read_output", arguments: { path: `spool://${run}/${stdout}`, view: "raw", ...next } });
        expect(result.isError, resultText(result).slice(0, 300)).toBeFalsy();
        const text = resultText(result);
        const newline = text.indexOf("\n");
        const header = text.slice(0, newline);
        const body = Buffer.from(text.slice(newline + 1));
        hash.update(body);
        bytes += body.length;
        const rest = /the rest: line (\d+), offset (\d+)\)$/.exec(header) ?? /the rest from line (\d+)\)$/.exec(header);
        const partEnd = /part of line (\d+) of \d+: bytes \d+-\d+, its end\)$/.exec(header);
        next = rest ? { line: Number(rest[1]), ...(rest[2] ? { offset: Number(rest[2]) } : {}) } : partEnd ? { line: Number(partEnd[1]) + 1 } : null;
      }
      expect(bytes).toBe(data.length);
      expect(hash.digest("hex")).toBe(digest);
    } finally {
      await mcp?.close();
    }
  }, 360_000);
});
