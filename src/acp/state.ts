import type { Editor, ForegroundState } from "./updates.js";

/**
 * A session's foreground work as ACP v2's `state_update` tells it: `running` while a loop of the run is under way,
 * `requires_action` while one of its proposals waits for a decision, `idle` (with why) once the loop ended. Driven by
 * the run's own events, so every client following the session sees the same states whoever prompted. Each method is
 * called from a task of the session's update queue, so the states keep their place among the other updates. An
 * editor that does not report states (ACP v1) is sent nothing.
 */
export class Foreground {
  #open = false;
  readonly #waiting = new Set<string>();
  #last: string | null = null;
  /** The idle of a loop that ended, until it is sent. */
  #idle: Extract<ForegroundState, { state: "idle" }> | null = null;

  constructor(
    private readonly sessionId: string,
    private readonly editor: Editor,
  ) {}

  /** A loop of the run started. */
  loopStarted(): Promise<void> {
    this.#open = true;
    this.#idle = null;
    return this.#emit();
  }

  /** A proposal waits for a decision: the loop cannot go on without one. */
  waiting(path: string): Promise<void> {
    this.#open = true;
    this.#waiting.add(path);
    return this.#emit();
  }

  /** A proposal was decided (or withdrawn): the loop goes on unless another one waits. */
  decided(path: string): Promise<void> {
    if (!this.#waiting.delete(path) || !this.#open) return Promise.resolve();
    return this.#emit();
  }

  /**
   * The loop ended: idle, and why (unless an idle of its is waiting to be sent already). Returns the sending of the
   * idle not sent yet, for the caller to place after the loop's last updates; only the first call of it sends.
   */
  ended(stop: Extract<ForegroundState, { state: "idle" }>): () => Promise<void> {
    if (this.#open) this.#idle = stop;
    this.#open = false;
    this.#waiting.clear();
    return () => {
      const idle = this.#idle;
      this.#idle = null;
      return idle ? this.#emit(idle) : Promise.resolve();
    };
  }

  /** The current state, sent whether or not it changed (ACP v2's resume sends one before it answers). */
  snapshot(open: boolean, waiting: string[]): Promise<void> {
    this.#open = open || waiting.length > 0;
    this.#idle = null;
    this.#waiting.clear();
    for (const path of waiting) this.#waiting.add(path);
    this.#last = null;
    return this.#emit();
  }

  #emit(idle?: Extract<ForegroundState, { state: "idle" }>): Promise<void> {
    if (!this.editor.state) return Promise.resolve();
    const state: ForegroundState = this.#open ? (this.#waiting.size > 0 ? { state: "requires_action" } : { state: "running" }) : (idle ?? { state: "idle" });
    const key = JSON.stringify(state);
    if (key === this.#last) return Promise.resolve();
    this.#last = key;
    return this.editor.state(this.sessionId, state);
  }
}
