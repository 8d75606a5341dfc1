// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { findProgram } from "../../src/runners/sandbox/sandbox.js";
import { startCliInProcess } from "../helpers/cli-in-process.js";
import { ended, startProducer } from "../helpers/live-output.js";
import { spawnCli } from "../helpers/process.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

describe("spool input and spool attach", () => {
  let ts: TestServer;
  let client: SpoolClient;
  const project = "cli-io";
  const env = () => ({ SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: ts.server.config.tokenFile, SPOOL_HOME: ts.home, SPOOL_PROJECT: project });
  /** A command run in this process (helpers/cli-in-process.ts). */
  const cli = (args: string[]) => startCliInProcess(args, env(), { cwd: ts.root });
  /** One whose stdin the test ends (the in-process call's stdin cannot be ended), and attach sessions: processes. */
  const process_ = (args: string[]) => spawnCli(args, env(), { cwd: ts.root });

  beforeAll(async () => {
    ts = await startTestServer();
    client = await ts.clientIn(project);
  });
  afterAll(() => ts.stop());

  it("spool input sends TEXT and a newline, --eof ends the input; a finished command is exit 1, a wrong run 4, a missing TEXT 2", async () => {
    const p = await startProducer(client, "in", "cat");
    const first = cli(["input", "in", p.path, "hello there"]);
    expect(await first.exit).toBe(0);
    const second = cli(["input", "in", p.path, "-n", "no newline", "--eof"]);
    expect(await second.exit).toBe(0);
    const { out } = await ended(client, "in", p.path, p.stdout);
    expect(out.body).toBe("hello there\nno newline");
    const late = cli(["input", "in", p.path, "too late"]);
    expect(await late.exit).toBe(1);
    expect(late.stderr()).toMatch(/^spool input: .*has finished/);
    const missing = cli(["input", "no-such-run", p.path, "x"]);
    expect(await missing.exit).toBe(4);
    const usage = cli(["input", "in", p.path]);
    expect(await usage.exit).toBe(2);
    expect(usage.stderr()).toContain("spool input needs RUN, CMD and TEXT");
  }, 90_000);

  it("spool input - sends its own standard input", async () => {
    const p = await startProducer(client, "piped", "wc -l");
    const input = process_(["input", "piped", p.path, "-", "--eof"]);
    input.write("a\nb\nc\n");
    input.child.stdin!.end();
    expect(await input.exit).toBe(0);
    const { out } = await ended(client, "piped", p.path, p.stdout);
    expect(out.body.trim()).toBe("3");
  }, 90_000);

  it("spool attach without a terminal: output so far and live, lines as input, end of its input as stream/eof, exit as the command's", async () => {
    const p = await startProducer(client, "att", "echo first; read a; echo got:$a; read b; echo got:$b; cat; exit 4");
    await p.output.until("first\n");
    const attach = process_(["attach", "att", p.path]);
    await attach.waitFor(/^first\n$/);
    attach.write("one\n");
    await attach.waitFor(/got:one\n$/);
    attach.write("two\nrest\n");
    attach.child.stdin!.end();
    expect(await attach.exit).toBe(1);
    expect(attach.stdout()).toBe("first\ngot:one\ngot:two\nrest\n");
    expect(attach.stderr()).toContain(`attached to ${p.path}; Ctrl-] detaches`);
    // Not silent when the command ends: how it ended.
    expect(attach.stderr()).toContain(`${p.path} ended: failed, exit 4`);
    const { out } = await ended(client, "att", p.path, p.stdout);
    expect(out.attributes.exit_code).toBe(4);
  }, 90_000);

  it.skipIf(!findProgram("python3", process.env.PATH))(
    "spool attach in a terminal: Ctrl-C interrupts a Python REPL, which goes on; exit() ends the command done, exit 0",
    async () => {
      const p = await startProducer(client, "repl", "python3 -q", { tty: { cols: 80, rows: 24 } });
      await p.output.until(">>> ");
      const term = spoolInTerminal(["attach", "repl", p.path], {
        cols: 80,
        rows: 24,
        cwd: ts.root,
        env: env(),
      });
      const exited = term.exited;
      await eventually(() => term.raw().includes("Ctrl-] detaches"), 60_000, "spool attach to start");
      term.type("\u0003");
      await eventually(() => term.raw().includes("KeyboardInterrupt"), 15_000, "the REPL to print KeyboardInterrupt");
      term.type("print(6 * 7)\r");
      await eventually(() => /\b42\r+\n/.test(term.raw()), 15_000, "the REPL to answer after the Ctrl-C");
      term.type("exit()\r");
      expect(await exited).toBe(0);
      expect(term.raw()).toContain(`${p.path} ended: done`);
      expect(term.raw()).not.toContain("SIGINT");
      const { out } = await ended(client, "repl", p.path, p.stdout);
      expect(out.status).toBe(ENTRY.done);
      expect(out.attributes.exit_code).toBe(0);
    },
    90_000,
  );

  it("spool attach in a terminal: raw keys, this terminal's size, Ctrl-] detaches and the command keeps running", async () => {
    const p = await startProducer(client, "raw", 'echo ready; read _; tput cols; read line; echo "line:$line"; sleep 300', { tty: { cols: 80, rows: 24 } });
    await p.output.until("ready");
    const term = spoolInTerminal(["attach", "raw", p.path], {
      cols: 97,
      rows: 31,
      cwd: ts.root,
      env: env(),
    });
    const exited = term.exited;
    await eventually(() => term.raw().includes("Ctrl-] detaches"), 60_000, "spool attach to start");
    // The command's terminal takes this one's size as soon as the attach starts.
    await eventually(async () => (await client.request("entry/get", { run: "raw", path: p.path })).attributes.tty.cols === 97, 15_000, "the resize");
    term.type("\r");
    // This terminal adds its own \r to the command's \r\n (raw mode keeps output processing).
    await eventually(() => /\b97\r+\n/.test(term.raw()), 15_000, "tput cols to print 97");
    term.type("hello\r");
    await eventually(() => term.raw().includes("line:hello"), 15_000, "the typed line to come back");
    term.type("\u001d");
    expect(await exited).toBe(0);
    expect(term.raw()).toContain(`detached from ${p.path}; it keeps running`);
    const log = await client.call("entry/get", { run: "raw", path: p.stdout });
    expect(log.status).toBe(ENTRY.streaming);
    const stdin = await client.call("entry/get", { run: "raw", path: p.stdout.replace(/_1$/, "_0") });
    expect(stdin.body).toBe("\rhello\r");
    await client.call("stream/cancel", { run: "raw", path: p.path });
  }, 90_000);
});
