import Anthropic, { APIConnectionError, APIError } from "@anthropic-ai/sdk";
import type {
  ContentBlockParam,
  MessageCreateParamsStreaming,
  MessageParam,
  RawMessageStreamEvent,
  TextBlockParam,
  Tool,
} from "@anthropic-ai/sdk/resources/messages/messages";
import { Echo } from "./answer-assembly.js";
import {
  AttemptWatch,
  CONTEXT_LENGTH,
  DEFAULT_MODEL_TIMEOUT_MS,
  httpFailure,
  isDecided,
  Retryable,
  type RetryPolicy,
  readStream,
  withRetries,
} from "./attempts.js";
import {
  type ChatMessage,
  type ChatOptions,
  type ChatRequest,
  type ChatResponse,
  ContextLengthError,
  type ModelProvider,
  ProviderError,
  type ThinkingItem,
  type ToolCall,
  type ToolSpec,
  type Usage,
} from "./chat.js";
import { clip, describe, errorText } from "./error-text.js";
import { sdkLogger } from "./sdk-logger.js";

export interface AnthropicOptions extends RetryPolicy {
  /** The API's root, as ANTHROPIC_BASE_URL (default https://api.anthropic.com). */
  baseUrl: string;
  apiKey: string;
  timeoutMs?: number;
  /** `max_tokens` of every request (the Messages API requires one; default 8192, more when thinking needs it). */
  maxTokens?: number;
  /** Extended thinking's token budget; absent: no thinking asked for. */
  thinkingTokens?: number;
}

const DEFAULT_MAX_TOKENS = 8192;
const EPHEMERAL = { type: "ephemeral" } as const;

/** Stop reasons in the words the loop reads (chat completions' finish reasons). */
const FINISH: Record<string, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  tool_use: "tool_calls",
  max_tokens: "length",
  pause_turn: "pause_turn",
  refusal: "refusal",
};

/** The message of an Anthropic error body ({type: "error", error: {type, message}}), or of anything else. */
function anthropicErrorText(body: unknown): string {
  const inner = (body as { error?: { type?: unknown; message?: unknown } } | undefined)?.error;
  if (inner && typeof inner === "object" && typeof inner.message === "string") {
    return typeof inner.type === "string" ? `${inner.message} (${inner.type})` : inner.message;
  }
  return errorText(body);
}

/** The error type of an Anthropic error body, if it names one. */
const errorType = (body: unknown): string | undefined => {
  const type = (body as { error?: { type?: unknown } } | undefined)?.error?.type;
  return typeof type === "string" ? type : undefined;
};

/** Errors inside a stream that another attempt may not meet (the API's own overload, failure, rate limit). */
const RETRYABLE_IN_STREAM = new Set(["overloaded_error", "api_error", "rate_limit_error"]);

/**
 * Spool's conversation as the Messages API takes it: the system prompt apart, every tool call a `tool_use` block
 * (after the thinking blocks it came with, sent back unchanged as the API requires while tools are in use), tool
 * results as `tool_result` blocks of the next user turn, and consecutive turns of one role merged into one.
 */
export function toAnthropic(messages: readonly ChatMessage[]): { system: TextBlockParam[]; messages: MessageParam[] } {
  const system: TextBlockParam[] = [];
  const out: { role: "user" | "assistant"; content: ContentBlockParam[] }[] = [];
  const push = (role: "user" | "assistant", blocks: ContentBlockParam[]) => {
    if (blocks.length === 0) return;
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const m of messages) {
    if (m.role === "system") system.push({ type: "text", text: m.content });
    else if (m.role === "user") push("user", [{ type: "text", text: m.content || " " }]);
    else if (m.role === "tool") push("user", [{ type: "tool_result", tool_use_id: m.tool_call_id, content: m.content || "(no output)" }]);
    else if (m.role === "assistant") {
      const blocks: ContentBlockParam[] = [];
      for (const item of m.thinking ?? []) if (item.kind === "anthropic") blocks.push(item.block as unknown as ContentBlockParam);
      if (m.content) blocks.push({ type: "text", text: m.content });
      for (const call of m.tool_calls ?? [])
        blocks.push({ type: "tool_use", id: call.id, name: call.function.name, input: parseInput(call.function.arguments) });
      push("assistant", blocks.length ? blocks : [{ type: "text", text: "(no reply)" }]);
    }
  }
  return { system, messages: out };
}

function parseInput(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text || "{}");
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * Prompt caching: breakpoints on the last tool, the system prompt, and the last block of the two latest user
 * turns, so that a long run's next request reads everything before its newest turn from the cache (the API
 * allows four).
 */
export function withCacheControl(system: TextBlockParam[], tools: Tool[], messages: MessageParam[]): void {
  const last = tools.at(-1);
  if (last) last.cache_control = EPHEMERAL;
  const lastSystem = system.at(-1);
  if (lastSystem) lastSystem.cache_control = EPHEMERAL;
  let marked = 0;
  for (let i = messages.length - 1; i >= 0 && marked < 2; i--) {
    const m = messages[i]!;
    if (m.role !== "user" || !Array.isArray(m.content)) continue;
    const block = m.content.at(-1) as { cache_control?: unknown } | undefined;
    if (!block) continue;
    block.cache_control = EPHEMERAL;
    marked++;
  }
}

const toTools = (tools: readonly ToolSpec[]): Tool[] =>
  tools.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters as Tool["input_schema"] }));

/** A reply as its events arrive: text, tool_use blocks whose input comes in `input_json_delta` pieces, thinking blocks. */
class AnthropicAnswer {
  content = "";
  finishReason: string | null = null;
  readonly #blocks = new Map<number, { kind: "text" | "tool" | "thinking" | "other"; block: Record<string, unknown>; json: string }>();
  readonly #order: number[] = [];
  #usage = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
  #stopped = false;

  constructor(private readonly echo: Echo) {}

  get stopped(): boolean {
    return this.#stopped;
  }

  take(event: RawMessageStreamEvent): void {
    switch (event.type) {
      case "message_start": {
        const u = event.message.usage;
        this.#usage = {
          input: u.input_tokens ?? 0,
          output: u.output_tokens ?? 0,
          cacheRead: u.cache_read_input_tokens ?? 0,
          cacheWrite: u.cache_creation_input_tokens ?? 0,
        };
        return;
      }
      case "content_block_start": {
        const block = { ...(event.content_block as unknown as Record<string, unknown>) };
        const type = block.type;
        const kind = type === "text" ? "text" : type === "tool_use" ? "tool" : type === "thinking" || type === "redacted_thinking" ? "thinking" : "other";
        if (kind === "text" && typeof block.text === "string" && block.text) this.#text(block.text);
        this.#blocks.set(event.index, { kind, block, json: "" });
        this.#order.push(event.index);
        return;
      }
      case "content_block_delta": {
        const entry = this.#blocks.get(event.index);
        if (!entry) return;
        const d = event.delta;
        if (d.type === "text_delta") this.#text(d.text);
        else if (d.type === "input_json_delta") entry.json += d.partial_json;
        else if (d.type === "thinking_delta") entry.block.thinking = `${String(entry.block.thinking ?? "")}${d.thinking}`;
        else if (d.type === "signature_delta") entry.block.signature = d.signature;
        return;
      }
      case "message_delta": {
        if (event.delta.stop_reason) this.finishReason = FINISH[event.delta.stop_reason] ?? event.delta.stop_reason;
        const u = event.usage;
        if (typeof u.output_tokens === "number") this.#usage.output = u.output_tokens;
        if (typeof u.input_tokens === "number") this.#usage.input = u.input_tokens;
        if (typeof u.cache_read_input_tokens === "number") this.#usage.cacheRead = u.cache_read_input_tokens;
        if (typeof u.cache_creation_input_tokens === "number") this.#usage.cacheWrite = u.cache_creation_input_tokens;
        return;
      }
      case "message_stop":
        this.#stopped = true;
        return;
      default:
        return;
    }
  }

  #text(delta: string): void {
    this.content += delta;
    this.echo.push(delta);
  }

  response(): ChatResponse {
    const toolCalls: ToolCall[] = [];
    const thinking: ThinkingItem[] = [];
    for (const index of this.#order) {
      const { kind, block, json } = this.#blocks.get(index)!;
      if (kind === "tool") {
        // The input is the concatenated pieces (the start event's `input` is {}); kept as text, the loop checks it.
        const args = json.trim() ? json : JSON.stringify(block.input ?? {});
        toolCalls.push({ id: String(block.id ?? ""), type: "function", function: { name: String(block.name ?? ""), arguments: args } });
      } else if (kind === "thinking") thinking.push({ kind: "anthropic", block });
    }
    const u = this.#usage;
    const prompt = u.input + u.cacheRead + u.cacheWrite;
    const usage: Usage = {
      promptTokens: prompt,
      completionTokens: u.output,
      totalTokens: prompt + u.output,
      ...(u.cacheRead ? { cacheReadTokens: u.cacheRead } : {}),
      ...(u.cacheWrite ? { cacheWriteTokens: u.cacheWrite } : {}),
    };
    return { content: this.content, toolCalls, finishReason: this.finishReason, usage, ...(thinking.length ? { thinking } : {}) };
  }
}

/**
 * The Anthropic Messages API on the official SDK (`@anthropic-ai/sdk`), which owns the wire: headers (x-api-key,
 * anthropic-version), the event stream, error bodies. Spool adds prompt caching breakpoints, thinking blocks kept
 * and sent back, retries it announces (429, 529 overloaded, 5xx, an overloaded error inside the stream, a cut
 * stream; `retry-after` wins), the silence watchdog, and "prompt is too long" as `ContextLengthError`.
 */
export class AnthropicProvider implements ModelProvider {
  constructor(
    readonly name: string,
    private readonly options: AnthropicOptions,
  ) {}

  get url(): string {
    return `${this.options.baseUrl.replace(/\/+$/, "")}/v1/messages`;
  }

  #client(watch: AttemptWatch): Anthropic {
    // Everything is given, so the SDK reads no credential from the server's environment. The key goes in the
    // API's documented x-api-key header (this SDK major would send it as a bearer token).
    return new Anthropic({
      apiKey: this.options.apiKey,
      defaultHeaders: { "X-Api-Key": this.options.apiKey, Authorization: null },
      baseURL: this.options.baseUrl.replace(/\/+$/, ""),
      maxRetries: 0,
      timeout: 2_147_483_647,
      fetch: watch.fetch,
      logger: sdkLogger({}),
    });
  }

  async chat(request: ChatRequest, options: ChatOptions): Promise<ChatResponse> {
    const echo = new Echo(options.onText);
    return withRetries(this.name, this.url, this.options, options, () => this.#attempt(request, options.signal, echo));
  }

  async contextWindow(model: string, signal: AbortSignal): Promise<number | undefined> {
    const watch = new AttemptWatch(this.options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS, signal);
    try {
      const info = await this.#client(watch).models.retrieve(model, {}, { signal: watch.controller.signal });
      return typeof info.max_input_tokens === "number" && info.max_input_tokens > 0 ? info.max_input_tokens : undefined;
    } finally {
      watch.close();
    }
  }

  params(request: ChatRequest): MessageCreateParamsStreaming {
    const { system, messages } = toAnthropic(request.messages);
    const tools = toTools(request.tools);
    withCacheControl(system, tools, messages);
    const thinking = this.options.thinkingTokens;
    const maxTokens = Math.max(this.options.maxTokens ?? DEFAULT_MAX_TOKENS, thinking ? thinking + 1024 : 0);
    return {
      model: request.model,
      max_tokens: maxTokens,
      messages,
      stream: true,
      ...(system.length ? { system } : {}),
      ...(tools.length ? { tools } : {}),
      ...(thinking ? { thinking: { type: "enabled", budget_tokens: thinking } } : {}),
    };
  }

  async #attempt(request: ChatRequest, signal: AbortSignal, echo: Echo): Promise<ChatResponse> {
    const watch = new AttemptWatch(this.options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS, signal);
    const answer = new AnthropicAnswer(echo);
    const failure = (error: unknown) => this.#failure(error, signal, watch);
    try {
      await readStream<RawMessageStreamEvent>(this, {
        signal,
        watch,
        echo,
        open: () => this.#client(watch).messages.create(this.params(request), { signal: watch.controller.signal }),
        take: (event) => answer.take(event),
        before: failure,
        during: failure,
      });
      if (!answer.stopped) throw new Retryable("the stream ended before the answer was complete");
      if (answer.finishReason === "model_context_window_exceeded") {
        throw new ContextLengthError(`${this.name}: the conversation is longer than the model's context (stop_reason model_context_window_exceeded)`);
      }
      return answer.response();
    } finally {
      watch.close();
    }
  }

  #failure(error: unknown, signal: AbortSignal, watch: AttemptWatch): unknown {
    if (signal.aborted) return signal.reason ?? error;
    if (watch.fired) return watch.timedOut(this.name, this.url);
    if (isDecided(error)) return error;
    if (error instanceof APIError && typeof error.status === "number") {
      return httpFailure(this.name, error.status, clip(anthropicErrorText(error.error), 300), error.headers ?? undefined);
    }
    if (error instanceof APIConnectionError) return new Retryable(`network error: ${describe(error.cause ?? error)}`);
    if (error instanceof APIError && error.headers) {
      // An `event: error` inside the stream.
      const text = clip(anthropicErrorText(error.error), 2000);
      if (CONTEXT_LENGTH.test(text)) return new ContextLengthError(`${this.name}: the conversation is longer than the model's context (${text})`);
      if (RETRYABLE_IN_STREAM.has(errorType(error.error) ?? "")) return new Retryable(`the server reported: ${text}`);
      return new ProviderError(`${this.name}: the server reported an error: ${text}`);
    }
    return new Retryable(`the connection was cut in the middle of the answer (${describe(error)})`);
  }
}
