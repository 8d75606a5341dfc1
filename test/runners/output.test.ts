import { spawn } from "node:child_process";
import { stat } from "node:fs";
import { getDefaultHighWaterMark } from "node:stream";
import { describe, expect, it } from "vitest";
import { OutputPipe } from "../../src/runners/output.js";

/** Blocks the event loop for `ms`, as a runner busy streaming many producers does between two reads of a pipe. */
const stall = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describe("a process's output after it exited", () => {
  it("is passed on whole when a slow reader held it back and the loop then stalls past the quiet period", async () => {
    const quietMs = 100;
    // More than the output's first read and the source's own buffer hold, by less than any kernel buffer between them
    // holds, so the process always exits: the end of its output may still be in the kernel, unread while the reader
    // holds the source back. (Ours: the output, 64 KiB and sometimes a second read; the source's buffer, the default
    // high-water mark: 16 KiB on Node 20, 64 KiB from Node 22. The kernel's: a pipe's 64 KiB, or what Node 24's
    // stdio gets, which held less than 30,000 bytes here. At the exit, Node resumes the source once, which moves what
    // it holds on to the output, and the rest comes out of the kernel.)
    const total = 64 * 1024 + getDefaultHighWaterMark(false) + 8192;
    const child = spawn(process.execPath, ["-e", `process.stdout.write(Buffer.alloc(${total}, 120))`], { stdio: ["ignore", "pipe", "inherit"] });
    const pipe = new OutputPipe(child.stdout);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await exited;
    // The source reads on until its own buffer is full, then leaves the rest in the kernel's pipe.
    while (child.stdout.readableLength < Math.min(child.stdout.readableHighWaterMark, total - pipe.output.readableLength))
      await new Promise((resolve) => setImmediate(resolve));
    expect(pipe.output.readableLength).toBeGreaterThanOrEqual(pipe.output.readableHighWaterMark);
    const settled = pipe.settle(quietMs);
    let received = 0;
    // The reader comes back in an I/O callback (as an acknowledgement from the server would), takes what is buffered,
    // and the loop is then busy past the quiet period before it polls the pipe again.
    await new Promise<void>((resolve) =>
      stat("/", () => {
        pipe.output.on("data", (chunk: Buffer) => {
          received += chunk.length;
        });
        setImmediate(() => {
          stall(quietMs * 2);
          resolve();
        });
      }),
    );
    await settled;
    await new Promise<void>((resolve) => (pipe.output.readableEnded ? resolve() : pipe.output.once("end", () => resolve())));
    expect(received).toBe(total);
  });

  it("lets the process write to its end when the consumer destroyed the output it had held back", async () => {
    const child = spawn(process.execPath, ["-e", "process.stdout.write(Buffer.alloc(1_000_000, 120))"], { stdio: ["ignore", "pipe", "inherit"] });
    const pipe = new OutputPipe(child.stdout);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // Nobody reads: the output fills and the source is paused.
    while (pipe.output.readableLength < pipe.output.readableHighWaterMark) await new Promise((resolve) => setImmediate(resolve));
    pipe.output.destroy();
    // The process could not write the rest of its megabyte while the source stayed paused.
    await exited;
    await pipe.settle(50);
  });
});
