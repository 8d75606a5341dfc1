import type { Writable } from "node:stream";
import type { ControlSignal, TtySize } from "../protocol/runner.js";
import { ControlError, type ExecutionControl, MAX_PENDING_INPUT_BYTES } from "./backend.js";

/** The terminal type commands under a pseudo-terminal see, unless the proposal's env names another. */
export const TTY_TERM = "xterm-256color";

/** A terminal's end-of-file character: a line discipline in canonical mode hands the reader what it holds, or end of file. */
export const TTY_EOF = Buffer.from([4]);

/** What a backend does for the controls that do not go through the input stream. */
export interface ControlTarget {
  /** Signals the command's process group; a command already gone is not an error. */
  signal(name: ControlSignal): Promise<void>;
  /** Resizes the terminal; absent without one. */
  resize?(size: TtySize): Promise<void>;
}

/**
 * Interactive control over a command's stdin stream: a pipe (ended by `end`)
 * or a terminal (`tty`: `end` sends ^D, the terminal itself stays open).
 * Input the command has not read yet is bounded: past `maxPendingBytes`, a
 * write is refused as "busy" rather than buffered without end.
 */
export function streamControl(stdin: Writable, target: ControlTarget, options: { tty: boolean; maxPendingBytes?: number }): ExecutionControl {
  let closed: string | null = null;
  const limit = options.maxPendingBytes ?? MAX_PENDING_INPUT_BYTES;
  // A command that exits or closes its stdin makes the next write fail with EPIPE: that is the end of its input, not a crash.
  stdin.on("error", () => {
    closed ??= "the command closed its input";
  });
  stdin.once("close", () => {
    closed ??= "the command's input is closed";
  });
  const writable = () => {
    if (closed) throw new ControlError("closed", closed);
    if (stdin.destroyed || stdin.writableEnded) throw new ControlError("closed", "the command's input is closed");
  };
  return {
    tty: options.tty,
    write(data) {
      writable();
      if (stdin.writableLength + data.length > limit) {
        throw new ControlError("busy", `the command has not read ${stdin.writableLength} bytes of earlier input (at most ${limit} may wait)`);
      }
      stdin.write(data);
    },
    end() {
      if (options.tty) {
        writable();
        stdin.write(TTY_EOF);
        return;
      }
      if (closed || stdin.writableEnded) return;
      closed = "the input was ended (stream/eof)";
      stdin.end();
    },
    signal: (name) => target.signal(name),
    async resize(size) {
      if (!target.resize) throw new ControlError("unsupported", "the command does not run under a terminal (propose it with tty to resize it)");
      await target.resize(size);
    },
  };
}

/** "INT" → "SIGINT". */
export const signalName = (name: ControlSignal): NodeJS.Signals => `SIG${name}` as NodeJS.Signals;
