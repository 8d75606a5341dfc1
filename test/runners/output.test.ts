import { spawn } from "node:child_process";
import { stat } from "node:fs";
import { describe, expect, it } from "vitest";
import { OutputPipe } from "../../src/runners/output.js";

/** Blocks the event loop for `ms`, as a runner busy streaming many producers does between two reads of a pipe. */
const stall = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describe("a process's output after it exited", () => {
  it("is passed on whole when a slow reader held it back and the loop then stalls past the quiet period", async () => {
    const quietMs = 100;
    // More than the pipe's buffers on our side hold, less than they and the kernel's pipe hold together: the process
    // exits with the end of its output still in the kernel's pipe, unread while the reader holds the source back.
    // (Ours: the output's 64 KiB and the source's one read of up to 64 KiB; the kernel's pipe: 64 KiB. At the exit, Node
    // resumes the source once, which moves the chunk it holds on to the output, and the rest comes out of the kernel's pipe.)
    const total = 160_000;
    const child = spawn(process.execPath, ["-e", `process.stdout.write(Buffer.alloc(${total}, 120))`], { stdio: ["ignore", "pipe", "inherit"] });
    const pipe = new OutputPipe(child.stdout);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await exited;
    // The source reads on until its own buffer is full, then leaves the rest in the kernel's pipe.
    while (child.stdout.readableLength < child.stdout.readableHighWaterMark) await new Promise((resolve) => setImmediate(resolve));
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
