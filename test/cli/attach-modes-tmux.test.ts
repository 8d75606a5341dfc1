import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { findProgram } from "../../src/runners/sandbox/sandbox.js";
import { infraRequired } from "../helpers/infra.js";
import { startProducer } from "../helpers/live-output.js";
import { SPOOL_BIN, spawnCli } from "../helpers/process.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/*
 * `spool attach` in tmux, a terminal whose state can be asked from outside: what the command's output set in it
 * (mouse reporting, the keypad, the title) is gone when the attach ends, and tmux's answer to a question the
 * command asked before the attach (ESC[6n, replayed) is not typed to it.
 */

const tmux = findProgram("tmux", process.env.PATH);
const missing = tmux ? null : "tmux is not installed (apt-get install -y tmux)";
if (missing && !infraRequired) console.warn(`skipping spool attach in tmux: ${missing}`);

describe.skipIf(missing !== null && !infraRequired)("spool attach in tmux: the terminal as it was, no answer typed", () => {
  let ts: TestServer;
  let client: SpoolClient;
  const socket = `spool-attach-${process.pid}`;
  const project = "attach-modes";
  const env = () => ({ SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: ts.server.config.tokenFile, SPOOL_HOME: ts.home, SPOOL_PROJECT: project });
  const tmuxDo = (...args: string[]) =>
    execFileSync(tmux!, ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8", env: { ...process.env, ...env() } });
  const pane = (format: string) => tmuxDo("display-message", "-p", "-t", "attach", format).trim();
  const screen = () => tmuxDo("capture-pane", "-p", "-t", "attach");

  beforeAll(async () => {
    if (missing) throw new Error(`SPOOL_TEST_INFRA=required but ${missing}`);
    ts = await startTestServer();
    client = await ts.clientIn(project);
  });
  afterAll(async () => {
    if (tmux) {
      try {
        tmuxDo("kill-server");
      } catch {
        // no server left to kill
      }
    }
    await ts?.stop();
  });

  it("after a detach: mouse reporting and keypad modes off, the title the one before, and no [typed] answer to ESC[6n", async () => {
    const command = "printf '\\033[?1000h\\033[?1h\\033=\\033]2;EVIL-TITLE\\007\\033[6n'; echo; echo replay-end; exec sleep 300";
    const p = await startProducer(client, "modes", command, { tty: { cols: 80, rows: 24 } });
    await p.output.until("replay-end");
    // The pane names itself "before", then runs the attach; the shell stays after it, so the pane's state can be read.
    const script = `printf '\\033]2;before\\007'; '${process.execPath}' '${SPOOL_BIN}' attach modes '${p.path}'; echo "attach-exit-$?"; exec sleep 300`;
    tmuxDo("new-session", "-d", "-s", "attach", "-x", "100", "-y", "30", "-c", ts.root, "sh", "-c", script);
    // Attached: the replayed output has set its modes in the pane (so the reset at the end is what clears them).
    await eventually(() => screen().includes("replay-end") && pane("#{mouse_any_flag}") === "1", 30_000, "the replay in the pane");
    expect(pane("#{pane_title}")).toBe("EVIL-TITLE");
    expect(pane("#{keypad_cursor_flag}#{keypad_flag}")).toBe("11");
    tmuxDo("send-keys", "-t", "attach", "C-]");
    await eventually(() => screen().includes("attach-exit-0"), 30_000, "spool attach to detach and exit 0");
    expect(screen()).toContain(`detached from ${p.path}`);
    expect(pane("#{mouse_any_flag}")).toBe("0");
    expect(pane("#{keypad_cursor_flag}#{keypad_flag}")).toBe("00");
    expect(pane("#{pane_title}")).toBe("before");
    // Nothing was typed to the command: tmux's answer to the replayed ESC[6n went nowhere.
    const tail = spawnCli(["tail", "--input", "modes", p.path], env(), { cwd: ts.root });
    expect(await tail.exit).toBe(0);
    expect(tail.stdout()).toContain("replay-end");
    expect(tail.stdout()).not.toContain("[typed]");
    // No input channel at all: nothing was ever typed.
    const { entries } = await client.call("entry/list", { run: "modes", pattern: p.stdout.replace(/_1$/, "_0") });
    expect(entries).toEqual([]);
    await client.call("stream/cancel", { run: "modes", path: p.path });
  }, 90_000);
});
