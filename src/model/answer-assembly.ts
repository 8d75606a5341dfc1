/** A chat completion as it arrives in pieces, and the text shown to the caller across retries. */
import type { ToolCall, Usage } from "./chat.js";

/**
 * Text already given to the caller, kept across attempts: when a retry starts
 * the answer again, what the caller has seen is not repeated; when the new
 * answer differs from it, a note says the answer started again.
 */
export class Echo {
  #shown = "";
  #attempt = "";
  #replaying = false;

  constructor(private readonly onText: (delta: string) => void) {}

  startAttempt(): void {
    this.#attempt = "";
    this.#replaying = this.#shown.length > 0;
  }

  push(delta: string): void {
    this.#attempt += delta;
    if (!this.#replaying) {
      this.#shown += delta;
      this.onText(delta);
      return;
    }
    if (this.#shown.startsWith(this.#attempt)) return; // repeating what was shown
    this.#replaying = false;
    if (this.#attempt.startsWith(this.#shown)) {
      const rest = this.#attempt.slice(this.#shown.length);
      this.#shown = this.#attempt;
      this.onText(rest);
    } else this.#restart();
  }

  /** The attempt ended: an answer shorter than what was shown, and different, is shown whole after a note. */
  endAttempt(): void {
    if (this.#replaying && this.#attempt !== this.#shown) this.#restart();
    this.#replaying = false;
  }

  #restart(): void {
    this.#shown = this.#attempt;
    this.onText(`\n[… the connection to the model was lost and its answer started again …]\n${this.#attempt}`);
  }
}

export interface WireToolCallPart {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string | object };
}

export interface WireChunk {
  object?: string;
  message?: string;
  choices?: {
    delta?: { content?: string | null; tool_calls?: WireToolCallPart[] | null };
    finish_reason?: string | null;
    message?: { content?: string | null; tool_calls?: WireToolCallPart[] | null };
  }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    total_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number } | null;
  } | null;
  error?: unknown;
}

/** A completion as it arrives: text, tool calls assembled from their pieces, finish reason, usage. */
export class Assembly {
  content = "";
  finishReason: string | null = null;
  usage: Usage | undefined;
  sawDone = false;
  readonly #calls: { id: string; name: string; arguments: string }[] = [];
  readonly #byIndex = new Map<number, { id: string; name: string; arguments: string }>();

  constructor(private readonly echo: Echo) {}

  text(delta: string): void {
    this.content += delta;
    this.echo.push(delta);
  }

  /**
   * One piece of a tool call. With `index`, pieces of the same index belong
   * together; without it (older Ollama sends whole calls), a piece with a new
   * id or a name starts a call and a piece with only arguments continues the last.
   */
  toolPart(part: WireToolCallPart): void {
    let call = typeof part.index === "number" ? this.#byIndex.get(part.index) : undefined;
    // A server that numbers every call 0 still gives each its own id.
    if (call && part.id && call.id && part.id !== call.id) call = undefined;
    if (!call && typeof part.index !== "number") {
      call = part.id ? this.#calls.find((c) => c.id === part.id) : undefined;
      if (!call && !part.id && !part.function?.name) call = this.#calls.at(-1);
    }
    if (!call) {
      call = { id: "", name: "", arguments: "" };
      this.#calls.push(call);
      if (typeof part.index === "number") this.#byIndex.set(part.index, call);
    }
    if (part.id && !call.id) call.id = part.id;
    const name = part.function?.name;
    // Some servers repeat the whole name on every piece.
    if (name && name !== call.name) call.name += name;
    const args = part.function?.arguments;
    if (typeof args === "string") call.arguments += args;
    else if (args && typeof args === "object") call.arguments = JSON.stringify(args);
  }

  toolCalls(): ToolCall[] {
    return this.#calls
      .filter((c) => c.name || c.arguments)
      .map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments.trim() ? c.arguments : "{}" } }));
  }
}
