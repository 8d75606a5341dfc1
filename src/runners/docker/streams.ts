import { type Duplex, PassThrough, type Readable } from "node:stream";
import { DockerDemuxer } from "../streams.js";

/** A terminal's output comes raw, stdout and stderr as one; otherwise it is multiplexed and split. */
export function outputStreams(stream: Duplex, tty: boolean): { stdout: Readable; stderr: Readable } {
  if (!tty) {
    const demux = new DockerDemuxer();
    stream.pipe(demux);
    return { stdout: demux.stdout, stderr: demux.stderr };
  }
  const stdout = new PassThrough({ highWaterMark: 64 * 1024 });
  const stderr = new PassThrough();
  stderr.end();
  stream.pipe(stdout);
  // A hijacked connection may close without an end: the output ends with it.
  stream.once("close", () => {
    if (!stdout.writableEnded) stdout.end();
  });
  return { stdout, stderr };
}

/** Waits for a stream to finish delivering (end, close or error). */
export function ended(stream: Readable | Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) return resolve();
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
}
