import { describe, expect, it } from "vitest";
import { startLocalTty } from "../../src/runners/local/tty.js";

/** `sh -c script` under a terminal, as the local backend starts it. */
function underTerminal(script: string, closing: AbortController) {
  return startLocalTty(
    { command: "output", env: {}, signal: closing.signal, tty: { cols: 80, rows: 24 } },
    {
      file: "/bin/sh",
      args: ["-c", script],
      cwd: process.cwd(),
      env: { PATH: "/usr/bin:/bin", TERM: "xterm-256color" },
      closing: closing.signal,
      signalGroup: (pgid, signal) => process.kill(-pgid, signal),
    },
  );
}

/** Everything a readable gives until its end, as text. */
async function whole(readable: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("latin1");
}

const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

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

  it("a command that wrote more than the output holds and ended while nobody read: all of its output arrives", async () => {
    const closing = new AbortController();
    // 75 000 bytes: the output holds 64 KiB, the terminal pauses, the rest (some KiB) waits in the kernel.
    const execution = await underTerminal("head -c 75000 /dev/zero | tr '\\0' a; printf END", closing);
    // The command ends once the terminal took its last write; node-pty tells the end once its socket is gone
    // (destroyed 200 ms after the exit while paused). Nothing is read until then.
    while (execution.stdout.readableLength < 64 * 1024) await new Promise((resolve) => setTimeout(resolve, 5));
    const [text] = await Promise.all([
      execution.result.then(() => whole(execution.stdout)),
      // The consumer reads again only after the command has gone (what it left is in the kernel and the socket).
      (async () => {
        const { pid } = execution.describe() as { pid: number };
        while (!gone(pid)) await new Promise((resolve) => setTimeout(resolve, 5));
      })(),
    ]);
    expect(text.length).toBe(75000 + 3);
    expect(text.endsWith("aEND")).toBe(true);
    closing.abort();
  }, 30_000);

  it("output left in the kernel when the command exits while the reader is stalled arrives whole (a short read is not the end)", async () => {
    const closing = new AbortController();
    // 8 000 bytes fit in the terminal's kernel buffers: the command writes them all and exits without being read.
    const execution = await underTerminal("head -c 8000 /dev/zero | tr '\\0' b; printf END", closing);
    const { pid } = execution.describe() as { pid: number };
    // This process stalls (a busy machine) until the command has exited: the first read then comes after the hang-up.
    const until = Date.now() + 10_000;
    while (!gone(pid) && Date.now() < until);
    expect(gone(pid)).toBe(true);
    const text = await whole(execution.stdout);
    await execution.result;
    expect(text.length).toBe(8000 + 3);
    expect(text.endsWith("bEND")).toBe(true);
    closing.abort();
  }, 30_000);
});
