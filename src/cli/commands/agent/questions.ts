import { createInterface, type Interface } from "node:readline";
import type { ReadStream } from "node:tty";
import { inForeground } from "../../foreground.js";
import { TypedInput } from "../../typed-input.js";

/** How often a command followed by a background `spool act` checks whether it was brought to the front. */
const FRONT_CHECK_MS = 250;

/**
 * Where answers to "Accept?" come from:
 * - `keys`: stdin is a terminal. Each question discards whatever was typed before it was drawn (in this
 *   process's buffer and in the terminal's), then takes one key pressed after it: keys typed for a command,
 *   or ahead of a question, never answer a question the person has not seen.
 * - `lines`: `--answers-from-stdin` (stdin not a terminal): one line per question, in order; end of input
 *   answers no.
 * - `none`: stdin is not a terminal and no flag says it holds answers: nothing is read; proposals wait for
 *   a decision from another client.
 */
export type AnswerSource = "keys" | "lines" | "none";

/** One answer per question (null: no answer will come here). Ctrl-C at a question becomes SIGINT. */
export class Questions {
  #rl: Interface | null = null;
  #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #closed = false;
  #stopKeys: (() => void) | null = null;
  /** Bytes typed while a command ran (read to notice them, so the next question counts them as ignored). */
  #typedWhileRunning = 0;
  /** A second, non-blocking handle on the terminal, to empty its input queue before each question. */
  #typed = new TypedInput((text) => this.note(text));

  constructor(
    readonly source: AnswerSource,
    private readonly note: (text: string) => void,
    /** Spool's own text on the terminal; `sameLine`: an answer echoed after its question. */
    private readonly write: (text: string, sameLine?: boolean) => void,
  ) {}

  ask(question: string): Promise<string | null> {
    if (this.source === "keys") return this.#askKey(question);
    this.write(question);
    if (this.source === "none") return new Promise((resolve) => (this.#waiting = resolve));
    if (!this.#rl) {
      this.#rl = createInterface({ input: process.stdin });
      this.#rl.on("line", (line) => {
        if (this.#waiting) this.#answer(line);
        else this.#lines.push(line);
      });
      this.#rl.on("close", () => {
        this.#closed = true;
        this.#answer(null);
      });
    }
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  #askKey(question: string): Promise<string | null> {
    const stdin = process.stdin as ReadStream;
    // Raw mode first: a line typed without Enter (held by the terminal until now) becomes readable, and is discarded with the rest.
    stdin.setRawMode(true);
    const dropped = this.#typed.discard(stdin) + this.#typedWhileRunning;
    this.#typedWhileRunning = 0;
    if (dropped > 0) this.note(`  (ignored ${dropped} ${dropped === 1 ? "byte" : "bytes"} typed before this question)`);
    this.write(question);
    return new Promise((resolve) => {
      this.#waiting = resolve;
      const onData = (chunk: Buffer) => {
        const keys = chunk.toString("utf8").replace(/[\r\n]+$/, "");
        if (keys.includes("\u0003")) {
          this.write("^C\n", true);
          process.emit("SIGINT");
          return;
        }
        if (keys === "\u0004") {
          this.write("^D\n", true);
          this.#answer("n");
          return;
        }
        // One key, pressed now; a paste or an escape sequence is not an answer.
        const key = /^[yna]$/i.test(keys) ? keys.toLowerCase() : "?";
        this.write(`${key === "?" ? "" : key}\n`, true);
        this.#answer(key);
      };
      stdin.on("data", onData);
      stdin.resume();
      this.#stopKeys = () => {
        stdin.off("data", onData);
        stdin.pause();
        stdin.setRawMode(false);
      };
    });
  }

  /**
   * While a command runs: keys typed on the terminal (which never reach the command) are read, not echoed, so
   * `typed` can tell the person so once they type; Ctrl-C stays an interrupt. Returns what ends the watch.
   */
  watchTyping(typed: () => void): () => void {
    const stdin = process.stdin as ReadStream;
    if (!stdin.isTTY || this.#stopKeys) return () => undefined;
    const onData = (chunk: Buffer) => {
      if (chunk.includes(3)) {
        process.emit("SIGINT");
        return;
      }
      this.#typedWhileRunning += chunk.length;
      typed();
    };
    let watching = false;
    // A background job (`spool act … --yes &`) leaves the terminal alone: raw mode or a read would stop it
    // (SIGTTOU, SIGTTIN). Brought to the front (`fg`, which continues it only if it was stopped), it is
    // noticed within FRONT_CHECK_MS and watches from then on.
    const start = () => {
      if (watching || stopped || !inForeground()) return;
      watching = true;
      clearInterval(checking);
      stdin.setRawMode(true);
      stdin.on("data", onData);
      stdin.resume();
    };
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(checking);
      if (this.#stopTyping === stop) this.#stopTyping = null;
      if (!watching) return;
      stdin.off("data", onData);
      stdin.pause();
      stdin.setRawMode(false);
    };
    const checking = setInterval(start, FRONT_CHECK_MS);
    checking.unref();
    start();
    this.#stopTyping = stop;
    return stop;
  }

  #stopTyping: (() => void) | null = null;

  /** Whether a question waits for its answer. */
  get asking(): boolean {
    return this.#waiting !== null;
  }

  /** Ends the question being asked: it is answered null (nobody will answer it here). */
  withdraw(): void {
    this.#answer(null);
  }

  #answer(line: string | null): void {
    this.#stopKeys?.();
    this.#stopKeys = null;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.(line);
  }

  close(): void {
    this.#stopTyping?.();
    this.#stopKeys?.();
    this.#stopKeys = null;
    this.#rl?.close();
    this.#typed.close();
  }
}
