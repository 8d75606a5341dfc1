import { StringDecoder } from "node:string_decoder";
import type { ToolCallStatus, ToolCallUpdate } from "@agentclientprotocol/sdk";
import { ConnectionClosedError, type SpoolClient, type StreamWatch } from "../client/spool-client.js";
import type { Logger } from "../logger.js";
import { parseLogPath } from "../protocol/paths.js";
import { ENTRY, entryStatusWord } from "../protocol/status.js";
import { type Producer, producerOf } from "../protocol/views.js";
import { fenced } from "./content.js";

/** A tool call's update without its id (the session adds it). */
export type ToolChange = Omit<ToolCallUpdate, "toolCallId">;

/** Terminal output waits this long for more before it is sent, so a chatty command is a few updates a second. */
const TERMINAL_FLUSH_MS = 50;
/** Sent at once when this much is waiting. */
const TERMINAL_FLUSH_BYTES = 64 * 1024;
/** What waits for an editor that does not keep up; beyond it the oldest part is left out (the entry keeps every byte). */
const TERMINAL_PENDING_MAX = 1024 * 1024;
/** A snapshot of the model view at most this often. */
const SNAPSHOT_MS = 1000;
/** Lines of each channel a snapshot shows. */
const SNAPSHOT_LINES = 40;
/** A terminal's first snapshot holds at most this much of its last lines. */
const SNAPSHOT_BYTES = 64 * 1024;

export interface OutputOptions {
  client: SpoolClient;
  run: string;
  /** The producer's log entry. */
  path: string;
  toolCallId: string;
  /** The editor declared `_meta.terminal_output`: raw output as terminal content; else snapshots in a code block. */
  terminal: boolean;
  /**
   * With `terminal`: the editor keeps the terminal's output (ACP v2), so what was stored before following began is
   * sent once as a snapshot of its last lines (`_meta.terminal_snapshot`), and only what comes after as output.
   */
  snapshot?: boolean;
  /**
   * Queues an update of the tool call, in order with the session's others; `output`: the characters of command
   * output it carries. False when the queue refused it (the editor is not reading).
   */
  send(change: ToolChange, output?: number): boolean;
  /** Resolves once the connection to the server is back after a drop (false when it did not come back in time). */
  reconnected(timeoutMs: number): Promise<boolean>;
  log: Logger;
  /** A line each snapshot starts with (who accepted the command), so the text an editor keeps still says it. */
  heading?: string | undefined;
}

/** How long the last update of a producer that ended waits for a dropped server connection to come back. */
const ENDING_RECONNECT_MS = 60_000;

/** The end of a producer as an editor shows it. */
export interface Ending {
  status: ToolCallStatus;
  exitCode: number | null;
  signal: string | null;
  reason: string | null;
  entryStatus: number;
}

/**
 * The live output of one accepted command, sent to the editor as its tool call's updates: with a terminal,
 * every byte as `terminal_output` and finally `terminal_exit`; without, a snapshot of what the model sees
 * (the rendered tail of stdout and stderr) at most once a second and once at the end. Ends the tool call
 * completed (exit 0) or failed, with the exit code.
 */
export class CommandOutput {
  #watch: StreamWatch | null = null;
  #pending = "";
  #dropped = 0;
  #timer: NodeJS.Timeout | null = null;
  #dirty = false;
  #snapshotting: Promise<void> | null = null;
  #closed = false;
  readonly #decoders = new Map<number, StringDecoder>();
  /** With `snapshot`: the stored output arriving before it is all here (its last bytes only), until it is sent as one. */
  #held: Buffer[] | null;
  #heldBytes = 0;
  #heldCut = false;
  #settle!: () => void;
  /** The producer has ended and its last updates are being made. */
  finishing = false;
  #markSubscribed!: () => void;
  readonly #subscribed = new Promise<void>((resolve) => (this.#markSubscribed = resolve));
  /** Resolves once following has ended (the last update queued, or closed). */
  readonly settled = new Promise<void>((resolve) => (this.#settle = resolve));

  constructor(private readonly options: OutputOptions) {
    this.#held = options.terminal && options.snapshot ? [] : null;
  }

  /** Watches the output (what is stored, then live) until the producer ends; resolves with how it ended. */
  async follow(): Promise<Ending | null> {
    try {
      return await this.#follow();
    } finally {
      this.#settle();
    }
  }

  /**
   * Resolves when the last updates of a producer that has ended are queued, or at once for one still
   * running: what a turn waits for before it is answered.
   */
  async quiet(): Promise<void> {
    await this.#subscribed;
    if (this.finishing) await this.settled;
  }

  async #follow(): Promise<Ending | null> {
    const { client, run, path } = this.options;
    try {
      this.#watch = await client.watch({ run, path }, (chunk) => this.#data(chunk.channel, chunk.data));
    } finally {
      this.#markSubscribed();
    }
    if (this.#held && this.#storedHere()) this.#release();
    const ended = await this.#watch.ended;
    this.finishing = true;
    if (this.#closed) return null;
    if (this.#held) this.#release();
    this.#flushTerminal(true);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const ending = await this.#ending(ended);
    if (this.#closed) return null;
    if (this.options.terminal) {
      this.options.send(finalChange(ending, path, { terminalId: this.options.toolCallId }));
    } else {
      await this.#snapshotting;
      // The tool call ends even when its output cannot be read (the entry keeps it).
      const text = await this.#whenConnected(() => this.#snapshot()).catch(
        (error: unknown) => `(the output could not be read: ${error instanceof Error ? error.message : String(error)}; Spool's entry ${path} keeps it)`,
      );
      if (this.#closed) return null;
      this.options.send(finalChange(ending, path, { text }));
    }
    return ending;
  }

  /** Runs `read`; when the server connection dropped meanwhile (a restart), once more after it is back. */
  async #whenConnected<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (!(error instanceof ConnectionClosedError) || !(await this.options.reconnected(ENDING_RECONNECT_MS)) || this.#closed) throw error;
      return read();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#settle();
    this.#markSubscribed();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#watch?.close();
  }

  #data(channel: number, data: Buffer): void {
    if (this.#closed) return;
    if (this.#held) {
      this.#hold(data);
      if (this.#storedHere()) this.#release();
      return;
    }
    if (!this.options.terminal) {
      this.#dirty = true;
      this.#timer ??= setTimeout(() => {
        this.#timer = null;
        this.#snapshotting = this.#sendSnapshot();
      }, SNAPSHOT_MS);
      return;
    }
    let decoder = this.#decoders.get(channel);
    if (!decoder) this.#decoders.set(channel, (decoder = new StringDecoder("utf8")));
    this.#pending += decoder.write(data);
    if (this.#pending.length > TERMINAL_PENDING_MAX) {
      const cut = this.#pending.length - TERMINAL_PENDING_MAX / 2;
      this.#dropped += cut;
      this.#pending = this.#pending.slice(cut);
    }
    if (this.#pending.length >= TERMINAL_FLUSH_BYTES) this.#flushTerminal();
    else this.#timer ??= setTimeout(() => this.#flushTerminal(), TERMINAL_FLUSH_MS);
  }

  /** Keeps the last bytes of the stored output (a snapshot shows no more). */
  #hold(data: Buffer): void {
    const held = this.#held!;
    held.push(data);
    this.#heldBytes += data.length;
    while (held.length > 1 && this.#heldBytes - held[0]!.length >= SNAPSHOT_BYTES) {
      this.#heldBytes -= held.shift()!.length;
      this.#heldCut = true;
    }
  }

  /** Whether every chunk stored when the watch began has arrived (unknown until the watch answered). */
  #storedHere(): boolean {
    const watch = this.#watch;
    if (!watch) return false;
    for (const [channel, seq] of watch.stored) if ((watch.lastSeq.get(channel) ?? 0) < seq) return false;
    return true;
  }

  /** The stored output's last lines as the terminal's snapshot; from now on output goes as it comes. */
  #release(): void {
    const held = Buffer.concat(this.#held!);
    this.#held = null;
    const { text, cut } = lastLines(held, SNAPSHOT_LINES, SNAPSHOT_BYTES);
    const note = cut || this.#heldCut ? `[… earlier output not shown here; Spool's entry ${this.options.path} keeps all of it]\r\n` : "";
    this.options.send({ _meta: { terminal_snapshot: { terminal_id: this.options.toolCallId, data: note + text } } }, text.length);
  }

  /** Sends what waits; when the editor is not reading, keeps it for later, or at the `last` flush says what it missed. */
  #flushTerminal(last = false): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#pending && !this.#dropped) return;
    const note = (dropped: number) => `\r\n[… ${dropped} characters not shown here; Spool's entry ${this.options.path} keeps all of them]\r\n`;
    const data = (this.#dropped ? note(this.#dropped) : "") + this.#pending;
    const terminal = (data: string) => ({ _meta: { terminal_output: { terminal_id: this.options.toolCallId, data } } });
    if (this.options.send(terminal(data), this.#pending.length)) {
      this.#pending = "";
      this.#dropped = 0;
    } else if (last) {
      // The note alone, small enough to be taken: the editor learns what it did not get.
      this.options.send(terminal(note(this.#dropped + this.#pending.length)));
      this.#pending = "";
      this.#dropped = 0;
    } else this.#timer = setTimeout(() => this.#flushTerminal(), TERMINAL_FLUSH_MS);
  }

  async #sendSnapshot(): Promise<void> {
    if (!this.#dirty || this.#closed) return;
    this.#dirty = false;
    try {
      const text = await this.#snapshot();
      if (!this.#closed) this.options.send({ content: [{ type: "content", content: { type: "text", text } }] });
    } catch (error) {
      this.options.log.warn(`snapshot of ${this.options.path} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** The rendered tail of each channel with output, as the model would read it, in code blocks. */
  async #snapshot(): Promise<string> {
    const { client, run, path } = this.options;
    const parts = parseLogPath(path);
    if (!parts) return "";
    const { entries } = await client.call("entry/list", { run, pattern: `${parts.tool}://turn_${parts.turn}/${parts.slug}_*` });
    const blocks: string[] = [];
    for (const entry of entries) {
      if (entry.bytes === 0) continue;
      const view = await client.call("entry/get", { run, path: entry.path, view: "model", tail: SNAPSHOT_LINES });
      const name = entry.channel?.name ?? entry.path;
      blocks.push(`${entries.length > 1 ? `${name}:\n` : ""}${fenced(view.body.replace(/\n+$/, ""))}`);
    }
    const heading = this.options.heading ? `${this.options.heading}\n` : "";
    return `${heading}${blocks.join("\n") || "(no output)"}`;
  }

  async #ending(ended: Map<number, { status: number; exit_code?: number | null }>): Promise<Ending> {
    const first = ended.get(1) ?? [...ended.values()][0];
    const entryStatus = first?.status ?? ENTRY.failed;
    let exitCode = first?.exit_code ?? null;
    let signal: string | null = null;
    let reason: string | null = null;
    try {
      // The log entry holds what the channel ending does not: the signal and a reason.
      const log = await this.#whenConnected(() => this.options.client.call("entry/get", { run: this.options.run, path: this.options.path }));
      const p = producerOf(log);
      const known = endingOf(p);
      if (known) return known;
      exitCode = p.exitCode ?? exitCode;
      signal = p.signal;
      if (p.outcome !== "completed") reason = p.reason;
    } catch (error) {
      this.options.log.warn(`reading ${this.options.path} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    return { status: entryStatus === ENTRY.done ? "completed" : "failed", exitCode, signal, reason, entryStatus };
  }
}

/** How a producer ended, from its typed view; null while it has not ended. */
export function endingOf(p: Producer): Ending | null {
  if (p.endStatus === null) return null;
  return {
    status: p.endStatus === ENTRY.done ? "completed" : "failed",
    exitCode: p.exitCode,
    signal: p.signal,
    reason: p.outcome !== "completed" ? p.reason : null,
    entryStatus: p.endStatus,
  };
}

/** A command's last update: its status, how it ended, and the terminal's exit or the last snapshot. */
export function finalChange(ending: Ending, path: string, show: { terminalId: string } | { text: string }): ToolChange {
  // Words, not the store's status numbers: a client shows rawOutput as it is.
  const rawOutput = { status: entryStatusWord(ending.entryStatus), exit_code: ending.exitCode, signal: ending.signal, reason: ending.reason, log: path };
  if ("terminalId" in show) {
    return {
      status: ending.status,
      rawOutput,
      _meta: { terminal_exit: { terminal_id: show.terminalId, exit_code: ending.exitCode, signal: ending.signal } },
    };
  }
  return {
    status: ending.status,
    content: [{ type: "content", content: { type: "text", text: `${show.text ? `${show.text}\n` : ""}${describeEnding(ending)}` } }],
    rawOutput,
  };
}

/** "exit 0", "exit 3", "killed by SIGTERM", "cancelled: reason". */
export function describeEnding(ending: Pick<Ending, "exitCode" | "signal" | "reason" | "entryStatus">): string {
  if (ending.entryStatus === ENTRY.cancelled) return `cancelled${ending.reason ? `: ${ending.reason}` : ""}`;
  if (ending.signal) return `killed by ${ending.signal}`;
  if (ending.exitCode !== null) return `exit ${ending.exitCode}`;
  return ending.reason ?? "";
}

/** The last `lines` lines of `bytes` (at most `max` bytes of them), as text; `cut` when something before was left out. */
export function lastLines(bytes: Buffer, lines: number, max: number): { text: string; cut: boolean } {
  let start = bytes.length;
  // A line's end is its newline: the last line may have none yet.
  let seen = bytes.at(-1) === 0x0a ? -1 : 0;
  while (start > 0 && bytes.length - start < max) {
    if (bytes[start - 1] === 0x0a && ++seen === lines) break;
    start--;
  }
  if (bytes.length - start > max) start = bytes.length - max;
  return { text: bytes.subarray(start).toString("utf8"), cut: start > 0 };
}
