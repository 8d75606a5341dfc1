import { closeSync, constants, openSync, readlinkSync, readSync } from "node:fs";
import type { ReadStream } from "node:tty";

/**
 * Keys typed before a question never answer it: the `spool act` prompt and `spool approve`'s confirmation
 * throw away what was typed before they ask, then take one key pressed after.
 */
export class TypedInput {
  #drainFd: number | null = null;
  #drainWarned = false;

  /** `note` tells the person once when the terminal cannot be emptied. */
  constructor(private readonly note: (text: string) => void) {}

  /** Throws away input that arrived before the question: what this process read already, then what the terminal holds. */
  discard(stdin: ReadStream): number {
    let dropped = 0;
    for (let chunk = stdin.read() as Buffer | null; chunk !== null; chunk = stdin.read() as Buffer | null) dropped += chunk.length;
    if (this.#drainFd === null) {
      try {
        // The terminal stdin is (libuv reads it through a handle of its own), opened again without blocking.
        let path = "/dev/tty";
        try {
          const link = readlinkSync("/proc/self/fd/0");
          if (link.startsWith("/dev/")) path = link;
        } catch {
          // No /proc (macOS): the controlling terminal, which stdin is when a person runs act.
        }
        this.#drainFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      } catch (error) {
        if (!this.#drainWarned) this.note(`  (cannot empty the terminal's input before questions: ${error instanceof Error ? error.message : String(error)})`);
        this.#drainWarned = true;
        return dropped;
      }
    }
    const buffer = Buffer.alloc(4096);
    for (;;) {
      try {
        const n = readSync(this.#drainFd, buffer, 0, buffer.length, null);
        if (n <= 0) break;
        dropped += n;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EAGAIN" && (error as NodeJS.ErrnoException).code !== "EWOULDBLOCK") throw error;
        break;
      }
    }
    return dropped;
  }

  close(): void {
    if (this.#drainFd !== null) closeSync(this.#drainFd);
    this.#drainFd = null;
  }
}

/**
 * Asks `question` on the terminal and takes one key pressed after it (input typed before is discarded and
 * counted): "y" or "n"; Ctrl-D, Enter alone, a paste or an escape sequence count as no. Ctrl-C interrupts.
 */
export async function confirmKey(question: string): Promise<boolean> {
  return (await chooseKey(question, ["y", "n"], "n")) === "y";
}

/**
 * Asks `question` on the terminal and takes one key pressed after it, input typed before discarded and counted:
 * one of `keys` (letters in any case), else `otherwise` (Ctrl-D, Enter alone, a paste or an escape sequence
 * too); the key taken is echoed. Ctrl-C interrupts (SIGINT) and answers `otherwise`.
 */
export async function chooseKey(question: string, keys: string[], otherwise: string): Promise<string> {
  const stdin = process.stdin as ReadStream;
  const typed = new TypedInput((text) => process.stderr.write(`${text}\n`));
  // Raw mode first: a line typed without Enter (held by the terminal until now) becomes readable, and is discarded with the rest.
  stdin.setRawMode(true);
  try {
    const dropped = typed.discard(stdin);
    if (dropped > 0) process.stderr.write(`  (ignored ${dropped} ${dropped === 1 ? "byte" : "bytes"} typed before this question)\n`);
    process.stdout.write(question);
    const pressed = await new Promise<string>((resolve) => {
      stdin.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8")));
      stdin.resume();
    });
    if (pressed.includes("\u0003")) {
      process.stdout.write("^C\n");
      process.kill(process.pid, "SIGINT");
      return otherwise;
    }
    const key = keys.find((k) => k.toLowerCase() === pressed.toLowerCase()) ?? otherwise;
    process.stdout.write(`${key}\n`);
    return key;
  } finally {
    stdin.pause();
    stdin.setRawMode(false);
    typed.close();
  }
}
