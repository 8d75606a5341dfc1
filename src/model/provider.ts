/** Chat messages in the chat-completions shape, as sent to the model server. */
export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: ToolCall[] }
  | { role: "tool"; tool_call_id: string; content: string };

export interface ToolCall {
  /** Empty when the server sent none: the agent loop gives every call an id unique in its run. */
  id: string;
  type: "function";
  /** `arguments` is the text the server sent (it may not be valid JSON; the loop checks it). */
  function: { name: string; arguments: string };
}

export interface ToolSpec {
  type: "function";
  function: { name: string; description: string; parameters: object };
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools: ToolSpec[];
}

/** Token counts as the server reported them for one completion. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface ChatResponse {
  content: string;
  toolCalls: ToolCall[];
  /** `stop`, `tool_calls`, `length` (cut at max_tokens)…; null when the server sent none (the answer still ended with `[DONE]`). */
  finishReason: string | null;
  usage?: Usage;
}

export interface ChatOptions {
  signal: AbortSignal;
  /** The answer's text as it streams. After a retry, text the caller was already given is not given again. */
  onText(delta: string): void;
  /** Called before each retry (429, 5xx, network error, connection cut mid-answer). */
  onRetry?(info: { attempt: number; reason: string; delayMs: number }): void;
}

/** A model provider: one streamed chat completion with tools. */
export interface ModelProvider {
  readonly name: string;
  chat(request: ChatRequest, options: ChatOptions): Promise<ChatResponse>;
}

/** The model refused the request because the conversation is too long: retrying cannot help. */
export class ContextLengthError extends Error {
  override readonly name = "ContextLengthError";
}

/** The provider failed for good (after retries, or with a non-retryable status). */
export class ProviderError extends Error {
  override readonly name = "ProviderError";
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A failure worth another attempt (429, 5xx, network error, a cut stream). */
class Retryable extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface OpenAiOptions {
  baseUrl: string;
  apiKey?: string;
  /** Attempts on 429, 5xx, network errors and connections cut mid-answer, the first included. */
  attempts?: number;
  /** First backoff; doubles each retry (Retry-After wins when the server sends it). */
  backoffMs?: number;
  /** How long to wait for the first byte of an answer, and for each next chunk (default 120000). */
  timeoutMs?: number;
  /** `max_tokens` of every request; the server's default when absent. */
  maxTokens?: number;
  fetch?: typeof fetch;
}

export const DEFAULT_MODEL_TIMEOUT_MS = 120_000;

/** HTTP answers worth asking again: too many requests, and the server's own failures (5xx). */
const retryableHttp = (code: number) => code === 429 || (code >= 500 && code <= 599);

const CONTEXT_LENGTH = /context[_ ]length|maximum context|too many tokens|context window/i;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

/**
 * Text already given to the caller, kept across attempts: when a retry starts
 * the answer again, what the caller has seen is not repeated; when the new
 * answer differs from it, a note says the answer started again.
 */
class Echo {
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

/** Aborts an attempt when the server stays silent for `ms`: before the first byte, and between chunks. */
class Watchdog {
  fired: "first byte" | "chunk" | null = null;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly controller: AbortController,
  ) {}

  arm(phase: "first byte" | "chunk"): void {
    clearTimeout(this.#timer);
    if (this.ms <= 0) return;
    this.#timer = setTimeout(() => {
      this.fired = phase;
      this.controller.abort(new Error(`no ${phase} within ${this.ms} ms`));
    }, this.ms);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

/** One server-sent event, as the EventSource specification assembles it. */
interface SseEvent {
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The same, plus lines without a field name that followed a data line (a server printing a multi-line message raw); used only when `data` is unreadable. */
  loose: string;
}

/**
 * An incremental SSE parser (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * lines end in CRLF, LF or CR; a blank line dispatches; `:` starts a comment;
 * one space after the colon is dropped; several data lines join with "\n".
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #loose: string[] = [];
  #event = "";

  feed(text: string): SseEvent[] {
    this.#buffer += text;
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === "\r" && match.index === this.#buffer.length - 1) break;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      const event = this.#line(line);
      if (event) events.push(event);
    }
    return events;
  }

  /** The stream ended: a last event without its blank line is still dispatched. */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.#buffer) {
      const event = this.#line(this.#buffer.replace(/\r$/, ""));
      if (event) events.push(event);
      this.#buffer = "";
    }
    const last = this.#line("");
    if (last) events.push(last);
    return events;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") {
      const event = this.#data.length ? { event: this.#event || "message", data: this.#data.join("\n"), loose: this.#loose.join("\n") } : undefined;
      this.#data = [];
      this.#loose = [];
      this.#event = "";
      return event;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.#data.push(value);
      this.#loose.push(value);
    } else if (field === "event") this.#event = value;
    else if (field !== "id" && field !== "retry" && this.#data.length) this.#loose.push(line);
    return undefined;
  }
}

/** JSON.parse, then again with raw control characters inside strings escaped (a multi-line message sent unescaped); undefined if neither reads. */
export function parseLenient(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // try the repaired form
  }
  let out = "";
  let inString = false;
  let escaped = false;
  for (const ch of text) {
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === '"') inString = false;
      else if (ch < " ") {
        out += ch === "\n" ? "\\n" : ch === "\r" ? "\\r" : ch === "\t" ? "\\t" : `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
        continue;
      }
    } else if (ch === '"') inString = true;
    out += ch;
  }
  try {
    return JSON.parse(out);
  } catch {
    return undefined;
  }
}

/** The message of an `error` member: a string, or {message, type, code}. */
function errorText(error: unknown): string {
  if (typeof error === "string") return error;
  if (error && typeof error === "object") {
    const { message, type, code } = error as { message?: unknown; type?: unknown; code?: unknown };
    const details = [type, code].filter((v) => typeof v === "string" || typeof v === "number").join(", ");
    const text = typeof message === "string" && message ? message : JSON.stringify(error);
    return details ? `${text} (${details})` : text;
  }
  return String(error);
}

/** The message in an error event nothing could parse: the "message" or "error" string if there is one, else the text. */
function errorFromText(text: string): string {
  const match = /"(?:message|error)"\s*:\s*"((?:[^"\\]|\\.)*)/.exec(text);
  if (match) {
    const value = parseLenient(`"${match[1]}"`);
    if (typeof value === "string" && value.trim()) return value;
  }
  return text.trim() || "an error event without a message";
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);

interface WireToolCallPart {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string | object };
}

interface WireChunk {
  object?: string;
  message?: string;
  choices?: {
    delta?: { content?: string | null; tool_calls?: WireToolCallPart[] | null };
    finish_reason?: string | null;
    message?: { content?: string | null; tool_calls?: WireToolCallPart[] | null };
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
  error?: unknown;
}

/** A completion as it arrives: text, tool calls assembled from their pieces, finish reason, usage. */
class Assembly {
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

/**
 * A chat-completions provider for OpenAI-compatible endpoints (OpenAI, vLLM,
 * llama.cpp, OpenRouter, Ollama's /v1, transformers serve): streamed
 * responses with tool calls, whatever shape the server streams them in;
 * retries with backoff on 429, 5xx, network errors and connections cut
 * mid-answer; a timeout on silence; context-length refusals reported as
 * `ContextLengthError`.
 */
export class OpenAiCompatibleProvider implements ModelProvider {
  /** Set once the server refused `stream_options` (some strict servers do); later requests leave it out. */
  #noStreamOptions = false;

  constructor(
    readonly name: string,
    private readonly options: OpenAiOptions,
  ) {}

  get url(): string {
    return `${this.options.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  }

  async chat(request: ChatRequest, options: ChatOptions): Promise<ChatResponse> {
    const attempts = this.options.attempts ?? 4;
    let backoff = this.options.backoffMs ?? 500;
    const echo = new Echo(options.onText);
    for (let attempt = 1; ; attempt++) {
      let delay: number;
      let reason: string;
      try {
        return await this.#attempt(request, options.signal, echo);
      } catch (error) {
        if (options.signal.aborted) throw options.signal.reason ?? error;
        if (!(error instanceof Retryable)) throw error;
        if (attempt >= attempts) throw new ProviderError(`${this.name}: ${error.message} (${this.url}, ${attempts} attempts)`);
        reason = error.message;
        delay = error.retryAfterMs ?? backoff;
      }
      options.onRetry?.({ attempt: attempt + 1, reason, delayMs: delay });
      if (delay > 0) await sleep(delay, options.signal);
      backoff *= 2;
    }
  }

  async #attempt(request: ChatRequest, signal: AbortSignal, echo: Echo): Promise<ChatResponse> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS;
    const watchdog = new Watchdog(timeoutMs, controller);
    const timedOut = () =>
      new ProviderError(
        watchdog.fired === "first byte"
          ? `${this.name}: ${this.url} did not answer within ${timeoutMs / 1000} s (SPOOL_MODEL_TIMEOUT_MS)`
          : `${this.name}: ${this.url} sent nothing for ${timeoutMs / 1000} s in the middle of its answer (SPOOL_MODEL_TIMEOUT_MS)`,
      );
    try {
      let response: Response;
      watchdog.arm("first byte");
      try {
        response = await (this.options.fetch ?? fetch)(this.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "text/event-stream",
            ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
          },
          body: JSON.stringify({
            model: request.model,
            messages: request.messages,
            tools: request.tools,
            stream: true,
            ...(this.#noStreamOptions ? {} : { stream_options: { include_usage: true } }),
            ...(this.options.maxTokens ? { max_tokens: this.options.maxTokens } : {}),
          }),
          signal: controller.signal,
        });
      } catch (error) {
        if (signal.aborted) throw error;
        if (watchdog.fired) throw timedOut();
        throw new Retryable(`network error: ${describe(error)}`);
      }
      if (!response.ok) {
        const text = await response.text().catch(() => "");
        if (watchdog.fired) throw timedOut();
        if ((response.status === 400 || response.status === 422) && !this.#noStreamOptions && /stream_options/.test(text)) {
          this.#noStreamOptions = true;
          throw new Retryable(`the server refused stream_options (HTTP ${response.status}); asking again without it`, 0);
        }
        if ((response.status === 400 || response.status === 413) && CONTEXT_LENGTH.test(text)) {
          throw new ContextLengthError(`${this.name}: the conversation is longer than the model's context (${firstLine(text)})`);
        }
        const detail = `HTTP ${response.status}${text ? `: ${firstLine(text)}` : ""}`;
        if (retryableHttp(response.status)) {
          const retryAfter = Number(response.headers.get("retry-after"));
          throw new Retryable(detail, Number.isFinite(retryAfter) && retryAfter >= 0 && response.headers.has("retry-after") ? retryAfter * 1000 : undefined);
        }
        throw new ProviderError(`${this.name}: ${detail}`, response.status);
      }
      echo.startAttempt();
      try {
        return await this.#read(response, echo, watchdog);
      } catch (error) {
        if (signal.aborted) throw error;
        if (watchdog.fired) throw timedOut();
        if (error instanceof ProviderError || error instanceof ContextLengthError || error instanceof Retryable) throw error;
        throw new Retryable(`the connection was cut in the middle of the answer (${describe(error)})`);
      } finally {
        echo.endAttempt();
      }
    } finally {
      watchdog.clear();
      signal.removeEventListener("abort", onAbort);
      controller.abort(); // releases the connection when the answer was left unread
    }
  }

  async #read(response: Response, echo: Echo, watchdog: Watchdog): Promise<ChatResponse> {
    const answer = new Assembly(echo);
    const type = response.headers.get("content-type") ?? "";
    watchdog.arm("chunk");
    if (type.includes("json")) {
      const text = await response.text();
      const parsed = parseLenient(text);
      if (parsed === undefined || typeof parsed !== "object" || parsed === null) throw this.#unreadable(text);
      this.#take(parsed as WireChunk, answer);
      answer.sawDone = true;
    } else {
      const parser = new SseParser();
      const decoder = new TextDecoder();
      let events = 0;
      let raw = "";
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        watchdog.arm("chunk");
        const text = decoder.decode(chunk, { stream: true });
        if (events === 0 && raw.length < 1_000_000) raw += text;
        for (const event of parser.feed(text)) {
          events++;
          this.#event(event, answer);
        }
      }
      const tail = decoder.decode();
      if (events === 0) raw += tail;
      for (const event of [...parser.feed(tail), ...parser.end()]) {
        events++;
        this.#event(event, answer);
      }
      // A server that ignores `stream` answers with one JSON object, whatever its content type says.
      if (events === 0 && raw.trim()) {
        const parsed = parseLenient(raw);
        if (parsed === undefined || typeof parsed !== "object" || parsed === null) throw this.#unreadable(raw);
        this.#take(parsed as WireChunk, answer);
        answer.sawDone = true;
      }
    }
    // Neither [DONE] nor a finish reason: the server stopped in the middle of its answer.
    if (!answer.sawDone && answer.finishReason === null) throw new Retryable("the stream ended before the answer was complete");
    return { content: answer.content, finishReason: answer.finishReason, toolCalls: answer.toolCalls(), ...(answer.usage ? { usage: answer.usage } : {}) };
  }

  #event(event: SseEvent, answer: Assembly): void {
    if (event.data.trim() === "[DONE]") {
      answer.sawDone = true;
      return;
    }
    const parsed = parseLenient(event.data) ?? (event.loose !== event.data ? parseLenient(event.loose) : undefined);
    if (event.event === "error") {
      const body = parsed as WireChunk | undefined;
      throw this.#serverError(
        body && typeof body === "object" ? errorText(body.error ?? body.message ?? body) : typeof parsed === "string" ? parsed : errorFromText(event.loose),
      );
    }
    if (parsed === undefined || typeof parsed !== "object" || parsed === null) {
      if (/error/i.test(event.loose)) throw this.#serverError(errorFromText(event.loose));
      throw this.#unreadable(event.data);
    }
    this.#take(parsed as WireChunk, answer);
  }

  #take(chunk: WireChunk, answer: Assembly): void {
    if (chunk.error !== undefined && chunk.error !== null) throw this.#serverError(errorText(chunk.error));
    if (chunk.object === "error") throw this.#serverError(errorText(chunk));
    if (chunk.usage) {
      const prompt = Number(chunk.usage.prompt_tokens ?? 0);
      const completion = Number(chunk.usage.completion_tokens ?? 0);
      answer.usage = { promptTokens: prompt, completionTokens: completion, totalTokens: Number(chunk.usage.total_tokens ?? prompt + completion) };
    }
    const choice = chunk.choices?.[0];
    if (!choice) return;
    if (choice.finish_reason) answer.finishReason = choice.finish_reason;
    const delta = choice.delta ?? {};
    if (typeof delta.content === "string" && delta.content) answer.text(delta.content);
    for (const part of delta.tool_calls ?? []) answer.toolPart(part);
    // A server that ignores `stream` answers with one whole message.
    if (choice.message) {
      if (typeof choice.message.content === "string" && choice.message.content) answer.text(choice.message.content);
      for (const part of choice.message.tool_calls ?? []) answer.toolPart({ ...part, index: undefined });
    }
  }

  #serverError(message: string): Error {
    const text = clip(message.trim(), 2000);
    if (CONTEXT_LENGTH.test(text)) return new ContextLengthError(`${this.name}: the conversation is longer than the model's context (${text})`);
    return new ProviderError(`${this.name}: the server reported an error: ${text}`);
  }

  #unreadable(text: string): ProviderError {
    return new ProviderError(`${this.name}: ${this.url} sent something that is not a chat-completions answer: ${clip(text.trim(), 300)}`);
  }
}

/** A network error's cause (fetch says only "fetch failed"). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: string; message?: string } | undefined;
  if (cause?.message) return cause.code && !cause.message.includes(cause.code) ? `${cause.code} ${cause.message}` : cause.message;
  return error.message;
}

function firstLine(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (parsed.error !== undefined && parsed.error !== null) return clip(errorText(parsed.error), 300);
    if (typeof parsed.message === "string") return clip(parsed.message, 300);
  } catch {
    // not JSON
  }
  return clip(text.split("\n")[0]!, 300);
}
