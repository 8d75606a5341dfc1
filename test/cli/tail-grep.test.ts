import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { runCli, type ServeProcess, spawnServe } from "../helpers/process.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { tempDir } from "../helpers/server.js";
import { resultText, startMcp } from "../mcp/harness.js";
import { modern } from "../mcp/modern-harness.js";

const ERRORS = [1234, 15_000, 29_990];
const LINES = 30_000;
const lineText = (n: number) => (ERRORS.includes(n) ? `ERROR: step ${n} failed` : `ok step ${n}`);

/** What every reader prints for `ERROR` with one line of context: grep -n's form. */
const EXPECTED = ERRORS.flatMap((n, i) => [...(i > 0 ? ["--"] : []), `${n - 1}-${lineText(n - 1)}`, `${n}:${lineText(n)}`, `${n + 1}-${lineText(n + 1)}`]);

/** `spool tail --grep` and MCP read_output with a pattern, against a `spool serve` process. */
describe("every reader searches a stored output", () => {
  let serve: ServeProcess;
  let client: SpoolClient;
  let home: string;
  let project: string;
  let token: string;
  const run = "build";
  let log: string;
  let stdout: string;
  const env = () => ({ SPOOL_HOME: home, SPOOL_SERVER: serve.url });

  beforeAll(async () => {
    const base = tempDir("spool-grep-");
    home = join(base, "home");
    project = join(base, "app");
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
    serve = await spawnServe(["--port", "0", "--home", home]);
    token = readFileSync(join(home, "token"), "utf8").trim();
    client = await SpoolClient.connect(serve.url, { token });
    await client.initialize(undefined, { root: project, create: true, client: { name: "grep", version: "1" } });
    const made = await proposeAndAccept(client, client, run, "make", { runner: "self" });
    log = made.path;
    stdout = made.stdout;
    const text = Buffer.from(Array.from({ length: LINES }, (_, i) => `${lineText(i + 1)}\n`).join(""));
    let seq = 1;
    for (let at = 0; at < text.length; at += 64 * 1024) {
      await client.call("stream", { run, path: log, channel: 1, chunk: text.subarray(at, at + 64 * 1024).toString("base64"), encoding: "base64", seq: seq++ });
    }
    await client.call("stream/completed", { run, path: log, exit_code: 1 });
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await serve?.stop();
  });

  it("spool tail --grep prints the matches with line numbers and context and exits 0; nothing matched: exit 1, nothing printed", async () => {
    const found = await runCli(["tail", run, log, "--grep", "ERROR", "-C", "1"], env(), project, 30_000);
    expect(found.code, found.err).toBe(0);
    expect(found.out).toBe(`${EXPECTED.join("\n")}\n`);
    // As grep -n: no `--` between matches apart when no context was asked for; -C 0 asks for it.
    const bare = await runCli(["tail", run, log, "--grep", "ERROR"], env(), project, 30_000);
    expect(bare).toMatchObject({ code: 0, out: `${ERRORS.map((n) => `${n}:${lineText(n)}`).join("\n")}\n` });
    const zero = await runCli(["tail", run, log, "--grep", "ERROR", "-C", "0"], env(), project, 30_000);
    expect(zero).toMatchObject({ code: 0, out: `${ERRORS.map((n) => `${n}:${lineText(n)}`).join("\n--\n")}\n` });
    const none = await runCli(["tail", run, log, "--grep", "no such line"], env(), project, 30_000);
    expect(none).toMatchObject({ code: 1, out: "" });
    const caseless = await runCli(["tail", run, stdout, "--grep", "error: STEP 15000", "-i"], env(), project, 30_000);
    expect(caseless).toMatchObject({ code: 0, out: "15000:ERROR: step 15000 failed\n" });
    const bad = await runCli(["tail", run, log, "--grep", "x", "-f"], env(), project, 30_000);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--grep searches what is stored");
  }, 60_000);

  it("MCP read_output with a pattern returns the same matches (2025-11-25 over stdio)", async () => {
    const mcp = await startMcp({ args: ["--server", serve.url, "--project", project], env: { SPOOL_HOME: home } });
    try {
      const result = await mcp.client.callTool({ name: "read_output", arguments: { path: `spool://${run}/${log}`, pattern: "ERROR", context: 1 } });
      const text = resultText(result);
      expect(text.split("\n").slice(1)).toEqual(EXPECTED.map((line) => (/^\d+:/.test(line) ? `${line}  (spool://${run}/${stdout})` : line)));
      expect(text.split("\n")[0]).toBe(`spool://${run}/${log}: 3 lines matching "ERROR" (${LINES} lines searched, failed)`);
      const refused = await mcp.client.callTool({ name: "read_output", arguments: { path: `spool://${run}/${stdout}`, pattern: "ERROR", tail: 3 } });
      expect(refused.isError).toBe(true);
      // A path that cannot be an entry's gets the help a wrong one gets, with a pattern or without.
      // A spool:// URI naming no command (a run and nothing after it) is malformed too, not "no command yet".
      for (const args of [
        { path: "make output", pattern: "ERROR" },
        { path: `spool://${run}/not a path` },
        { path: `spool://${run}/`, pattern: "ERROR" },
        { path: "spool://", pattern: "ERROR" },
      ]) {
        const malformed = await mcp.client.callTool({ name: "read_output", arguments: args });
        expect(malformed.isError).toBe(true);
        expect(resultText(malformed)).toContain("is not an output's path: read_output takes a path run_command gave");
        expect(resultText(malformed)).not.toContain("Invalid params");
      }
      // The tools that reach a command by its path say the same of a malformed one.
      for (const [name, extra] of [
        ["send_input", { text: "y\n" }],
        ["signal", { signal: "INT" }],
        ["cancel", {}],
      ] as const) {
        for (const path of ["make output", `spool://${run}/`]) {
          const malformed = await mcp.client.callTool({ name, arguments: { path, ...extra } });
          expect(malformed.isError, name).toBe(true);
          expect(resultText(malformed), name).toContain(`${JSON.stringify(path)} is not a command's path: give the path run_command gave`);
          expect(resultText(malformed), name).not.toContain("Invalid params");
        }
      }
      const bare = resultText(await mcp.client.callTool({ name: "read_output", arguments: { path: `spool://${run}/${log}`, pattern: "ERROR" } }));
      expect(bare).not.toContain("\n--\n");
    } finally {
      await mcp.close();
    }
  }, 60_000);

  it("MCP read_output with a pattern returns the same matches (2026-07-28 at /mcp)", async () => {
    const url = `${serve.url.replace(/^ws/, "http")}mcp?root=${encodeURIComponent(project)}`;
    const answer = await modern(
      url,
      "tools/call",
      { name: "read_output", arguments: { path: `spool://${run}/${stdout}`, pattern: "ERROR", context: 1 } },
      { token },
    );
    const content = (answer.body.result?.content ?? []) as { type: string; text: string }[];
    expect(content[0]?.text.split("\n").slice(1)).toEqual(EXPECTED);
  }, 60_000);
});
