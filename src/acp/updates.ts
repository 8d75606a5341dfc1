import type { RequestPermissionRequest, RequestPermissionResponse, SessionUpdate } from "@agentclientprotocol/sdk";
import type { Logger } from "../logger.js";

/** The `_meta` key of a v1 update that stands for a compaction (its `run/compaction` notice); v2 sends its own updates. */
export const COMPACTION_META = "spool/compaction";

/** The session's foreground work as ACP v2's `state_update` reports it (v1 has no such update). */
export type ForegroundState =
  | { state: "running" }
  | { state: "requires_action" }
  | { state: "idle"; stopReason?: "end_turn" | "cancelled" | "error"; error?: string };

/** What a permission request is about, besides the tool call it shows: the facts an encoder other than v1's needs. */
export interface PermissionAbout {
  command: string;
  /** The command's working directory, absolute. */
  cwd: string;
  /** The facts every client shows (src/protocol/proposal-facts.ts), as plain text. */
  facts: string;
  /** The terminal the command runs in, when the editor is shown one. */
  terminalId: string | null;
  /** What the request is about: a command (the default) or the tool call alone (a budget reached: nothing runs). */
  subject?: "command" | "tool_call";
}

/**
 * What a session needs of the editor: its name, whether it shows terminals, and the calls it makes. The session
 * speaks in ACP v1's terms; an editor that negotiated another version encodes them (v2.ts).
 */
export interface Editor {
  readonly name: string;
  readonly terminal: boolean;
  /**
   * The editor keeps a terminal's output itself (ACP v2's agent-owned terminals): a command followed from the middle
   * starts with a snapshot of its last lines, then only what comes after.
   */
  readonly terminalSnapshot?: boolean;
  /** Whether its principal may decide proposals: when not, they are shown, never asked about. */
  readonly mayDecide: boolean;
  /** The editor is told each prompt's message id (ACP v2), the same live and replayed (`promptMessageId`). */
  readonly messageIds?: boolean;
  update(sessionId: string, update: SessionUpdate): Promise<void>;
  requestPermission(params: RequestPermissionRequest, signal: AbortSignal, about: PermissionAbout): Promise<RequestPermissionResponse>;
  /** The session's foreground state changed (only an editor that reports it has this). */
  state?(sessionId: string, state: ForegroundState): Promise<void>;
}

/** Updates waiting for the editor; past it, new ones are dropped (with one warning) rather than held without bound. */
const MAX_QUEUED = 10_000;
/**
 * The command output among them, in characters; past it, output is refused (its sender keeps it or says what it left
 * out). Large enough that an editor reading at its own pace gets a 100 MiB command's output whole; this memory is
 * the `spool acp` process's (the editor's own), not the server's.
 */
const MAX_QUEUED_OUTPUT = 128 * 1024 * 1024;

/**
 * The ordered queue of a session's `session/update`s: each task runs after the ones queued before it, so the
 * editor sees text, tool calls, permission requests and command output in the order Spool reported them.
 * Consecutive text chunks still waiting join into one update.
 */
export class UpdateQueue {
  readonly #queue: { task: () => Promise<void>; output: number }[] = [];
  #output = 0;
  #draining = false;
  #dropped = 0;
  /** The last queued task when it is a text chunk: more text joins it until it is sent. */
  #text: { text: string; sent: boolean } | null = null;
  #closed = false;

  constructor(
    private readonly sessionId: string,
    private readonly editor: Editor,
    private readonly log: Logger,
  ) {}

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one update now (a task of the queue calls it to keep its place). */
  send(update: SessionUpdate): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.editor.update(this.sessionId, update);
  }

  /**
   * Runs `task` after every task queued before it; false when it was refused (closed, or the editor is not reading).
   * `output`: the characters of command output it carries, refused past MAX_QUEUED_OUTPUT waiting.
   */
  enqueue(task: () => Promise<void>, output = 0): boolean {
    if (this.#closed) return false;
    if (this.#queue.length >= MAX_QUEUED || (output > 0 && this.#output + output > MAX_QUEUED_OUTPUT)) {
      if (this.#dropped++ === 0) this.log.warn(`session ${this.sessionId}: the editor is not reading; updates are dropped until it catches up`);
      return false;
    }
    this.#text = null;
    this.#queue.push({ task, output });
    this.#output += output;
    if (!this.#draining) void this.#drain();
    return true;
  }

  /** The model's text, as an `agent_message_chunk` (joined to the chunk before it when that one is still waiting). */
  text(delta: string): void {
    if (this.#text && !this.#text.sent) {
      this.#text.text += delta;
      return;
    }
    const chunk = { text: delta, sent: false };
    this.enqueue(async () => {
      chunk.sent = true;
      await this.send({ sessionUpdate: "agent_message_chunk", content: { type: "text", text: chunk.text } });
    });
    this.#text = chunk;
  }

  /** Resolves once every update queued so far is out (at once when the queue is full or closed). */
  flushed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      if (this.#queue.length >= MAX_QUEUED) return resolve();
      this.enqueue(async () => resolve());
    });
  }

  /** Nothing more goes out; what waits is dropped. */
  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
    this.#output = 0;
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        this.#output -= next.output;
        try {
          await next.task();
        } catch (error) {
          if (!this.#closed) this.log.warn(`session ${this.sessionId}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    } finally {
      this.#draining = false;
      this.#dropped = 0;
    }
  }
}
