import OpenAI, { APIConnectionError } from "openai";
import { Assembly, Echo, type WireChunk } from "./answer-assembly.js";
import {
  AttemptWatch,
  CONTEXT_LENGTH,
  DEFAULT_MODEL_TIMEOUT_MS,
  httpFailure,
  isDecided,
  isHttpError,
  Retryable,
  type RetryPolicy,
  readStream,
  withRetries,
} from "./attempts.js";
import { type ChatMessage, type ChatOptions, type ChatRequest, type ChatResponse, ContextLengthError, type ModelProvider, ProviderError } from "./chat.js";
import { clip, describe, errorFromText, errorText, parseLenient } from "./error-text.js";
import { sdkLogger, type Unparsed } from "./sdk-logger.js";

export { DEFAULT_MODEL_TIMEOUT_MS };

export interface OpenAiOptions extends RetryPolicy {
  baseUrl: string;
  apiKey?: string;
  /** How long to wait for the first byte of an answer, and for each next chunk (default 120000). */
  timeoutMs?: number;
  /** `max_tokens` of every request; the server's default when absent. */
  maxTokens?: number;
}

/** The messages as chat completions takes them: Spool's kept reasoning of other APIs left out. */
function wireMessages(messages: readonly ChatMessage[]): OpenAI.Chat.ChatCompletionMessageParam[] {
  return messages.map((m) => {
    if (m.role !== "assistant" || m.thinking === undefined) return m as OpenAI.Chat.ChatCompletionMessageParam;
    const { thinking: _kept, ...rest } = m;
    return rest as OpenAI.Chat.ChatCompletionMessageParam;
  });
}

/**
 * A chat-completions provider for OpenAI-compatible endpoints (OpenAI, vLLM, llama.cpp, OpenRouter, Ollama's
 * /v1), on the `openai` SDK, which owns the wire (requests, headers, the event stream, HTTP errors). Spool keeps
 * what real servers need beyond it: tool calls assembled whatever shape they stream in (no index, no id, whole),
 * error events that are not JSON, a server that ignores `stream`, retries (the cut stream included) announced to
 * the run, a timeout on silence, and context-length refusals reported as `ContextLengthError`.
 */
export class OpenAiCompatibleProvider implements ModelProvider {
  /** Set once the server refused `stream_options` (some strict servers do); later requests leave it out. */
  #noStreamOptions = false;

  constructor(
    readonly name: string,
    private readonly options: OpenAiOptions,
  ) {}

  get url(): string {
    return `${this.#baseUrl}/chat/completions`;
  }

  get #baseUrl(): string {
    return this.options.baseUrl.replace(/\/+$/, "");
  }

  #client(watch: AttemptWatch, unparsed: Unparsed): OpenAI {
    return new OpenAI({
      baseURL: this.#baseUrl,
      // A server without a key gets no Authorization header (null removes the SDK's).
      apiKey: this.options.apiKey ?? "unused",
      ...(this.options.apiKey ? {} : { defaultHeaders: { authorization: null } }),
      organization: null,
      project: null,
      maxRetries: 0,
      timeout: 2_147_483_647, // the watchdog times silence out; the SDK's clock would only time the headers
      fetch: watch.fetch,
      logger: sdkLogger(unparsed),
    });
  }

  async chat(request: ChatRequest, options: ChatOptions): Promise<ChatResponse> {
    const echo = new Echo(options.onText);
    return withRetries(this.name, this.url, this.options, options, () => this.#attempt(request, options.signal, echo));
  }

  async contextWindow(model: string, signal: AbortSignal): Promise<number | undefined> {
    const watch = new AttemptWatch(this.options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS, signal);
    try {
      // vLLM says max_model_len, OpenRouter context_length, llama.cpp its meta's n_ctx_train; OpenAI says nothing.
      for await (const entry of this.#client(watch, {}).models.list({ signal: watch.controller.signal })) {
        if (entry.id !== model) continue;
        const info = entry as unknown as Record<string, unknown> & { meta?: Record<string, unknown> };
        for (const value of [info.max_model_len, info.context_length, info.context_window, info.meta?.n_ctx_train]) {
          if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
        }
        return undefined;
      }
      return undefined;
    } finally {
      watch.close();
    }
  }

  async #attempt(request: ChatRequest, signal: AbortSignal, echo: Echo): Promise<ChatResponse> {
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS;
    const watch = new AttemptWatch(timeoutMs, signal);
    const unparsed: Unparsed = {};
    const answer = new Assembly(echo);
    let chunks = 0;
    try {
      await readStream<OpenAI.Chat.ChatCompletionChunk>(this, {
        signal,
        watch,
        echo,
        open: () =>
          this.#client(watch, unparsed).chat.completions.create(
            {
              model: request.model,
              messages: wireMessages(request.messages),
              tools: request.tools as OpenAI.Chat.ChatCompletionTool[],
              stream: true,
              ...(this.#noStreamOptions ? {} : { stream_options: { include_usage: true } }),
              ...(this.options.maxTokens ? { max_tokens: this.options.maxTokens } : {}),
            },
            { signal: watch.controller.signal },
          ),
        take: (chunk) => {
          chunks++;
          this.#take(chunk as WireChunk, answer);
        },
        before: (error) => this.#before(error, signal, watch),
        during: (error) => this.#during(error, signal, watch, unparsed),
      });
      // A server that ignores `stream` answers with one JSON object, whatever its content type says.
      if (chunks === 0 && watch.head.trim()) {
        const parsed = parseLenient(watch.head);
        if (parsed === undefined || typeof parsed !== "object" || parsed === null) throw this.#unreadable(watch.head);
        echo.startAttempt();
        this.#take(parsed as WireChunk, answer);
        echo.endAttempt();
        return this.#response(answer);
      }
      // Neither [DONE] nor a finish reason: the server stopped in the middle of its answer.
      if (!watch.sawDone && answer.finishReason === null) throw new Retryable("the stream ended before the answer was complete");
      return this.#response(answer);
    } finally {
      watch.close();
    }
  }

  #response(answer: Assembly): ChatResponse {
    return { content: answer.content, finishReason: answer.finishReason, toolCalls: answer.toolCalls(), ...(answer.usage ? { usage: answer.usage } : {}) };
  }

  /** A failure before the answer began: the HTTP status, a refused `stream_options`, the network. */
  #before(error: unknown, signal: AbortSignal, watch: AttemptWatch): unknown {
    if (signal.aborted) return signal.reason ?? error;
    if (watch.fired) return watch.timedOut(this.name, this.url);
    if (isHttpError(error)) {
      const text = clip(error.error !== undefined && error.error !== null ? errorText(error.error) : error.message.replace(/^\d{3}\s*/, ""), 300);
      if ((error.status === 400 || error.status === 422) && !this.#noStreamOptions && /stream_options/.test(text)) {
        this.#noStreamOptions = true;
        return new Retryable(`the server refused stream_options (HTTP ${error.status}); asking again without it`, 0);
      }
      return httpFailure(this.name, error.status, text, error.headers);
    }
    if (error instanceof APIConnectionError) return new Retryable(`network error: ${describe(error.cause ?? error)}`);
    return error;
  }

  /** A failure in the middle of the answer: an error event, an event that is not JSON, a cut connection. */
  #during(error: unknown, signal: AbortSignal, watch: AttemptWatch, unparsed: Unparsed): unknown {
    if (signal.aborted) return signal.reason ?? error;
    if (watch.fired) return watch.timedOut(this.name, this.url);
    if (isDecided(error)) return error;
    // An error event the SDK read as JSON: `data: {"error": …}`.
    if (error instanceof OpenAI.APIError && error.status === undefined && error.headers !== undefined) return this.#serverError(errorText(error.error));
    if (error instanceof SyntaxError && unparsed.data !== undefined) return this.#unparsedEvent(unparsed);
    return new Retryable(`the connection was cut in the middle of the answer (${describe(error)})`);
  }

  /** An event whose data is not JSON: a server's error in plain or broken text, else something unreadable. */
  #unparsedEvent({ data = "", raw = [] }: Unparsed): Error {
    // Lines without a field name after the data: a server printing a multi-line message raw.
    const loose = raw
      .filter((line) => !/^(event|id|retry)(:|$)/.test(line) && !line.startsWith(":"))
      .map((line) => line.replace(/^data: ?/, ""))
      .join("\n");
    const parsed = parseLenient(data) ?? parseLenient(loose);
    const isErrorEvent = raw.some((line) => /^event: ?error$/.test(line));
    if (parsed && typeof parsed === "object") {
      const body = parsed as WireChunk;
      if (body.error !== undefined && body.error !== null) return this.#serverError(errorText(body.error));
      if (isErrorEvent) return this.#serverError(errorText(body.message ?? body));
    }
    if (isErrorEvent) return this.#serverError(typeof parsed === "string" ? parsed : errorFromText(loose));
    if (/error/i.test(loose)) return this.#serverError(errorFromText(loose));
    return this.#unreadable(data);
  }

  #take(chunk: WireChunk, answer: Assembly): void {
    if (chunk.error !== undefined && chunk.error !== null) throw this.#serverError(errorText(chunk.error));
    if (chunk.object === "error") throw this.#serverError(errorText(chunk));
    if (chunk.usage) {
      const prompt = Number(chunk.usage.prompt_tokens ?? 0);
      const completion = Number(chunk.usage.completion_tokens ?? 0);
      const cached = Number(chunk.usage.prompt_tokens_details?.cached_tokens ?? 0);
      answer.usage = {
        promptTokens: prompt,
        completionTokens: completion,
        totalTokens: Number(chunk.usage.total_tokens ?? prompt + completion),
        ...(cached > 0 ? { cacheReadTokens: cached } : {}),
      };
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
