import { describe, expect, it } from "vitest";
import { startLocalTty } from "../../src/runners/local/tty.js";

describe("a command under a terminal (local backend)", () => {
  it("ends once a consumer destroyed the output it held back (the terminal is read on, not left paused)", async () => {
    const closing = new AbortController();
    const execution = await startLocalTty(
      { command: "flood", env: {}, signal: closing.signal, tty: { cols: 80, rows: 24 } },
      {
        file: "/bin/sh",
        // 1 MiB of output: far past the output's 64 KiB, so the terminal is paused while nobody reads.
        args: ["-c", "head -c 1048576 /dev/zero | tr '\\0' a"],
        cwd: process.cwd(),
        env: { PATH: "/usr/bin:/bin", TERM: "xterm-256color" },
        closing: closing.signal,
        signalGroup: (pgid, signal) => process.kill(-pgid, signal),
      },
    );
    // The output fills up unread: wait until the terminal is held back.
    while (execution.stdout.readableLength < 64 * 1024) await new Promise((resolve) => setTimeout(resolve, 5));
    execution.stdout.destroy();
    // Before, the terminal stayed paused: the command blocked on its writes and never ended.
    const result = await execution.result;
    expect(result.exitCode).toBe(0);
    closing.abort();
  }, 30_000);
});
