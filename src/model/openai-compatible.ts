import { Assembly, Echo, type WireChunk } from "./answer-assembly.js";
import { type ChatOptions, type ChatRequest, type ChatResponse, ContextLengthError, type ModelProvider, ProviderError } from "./chat.js";
import { clip, describe, errorFromText, errorText, firstLine } from "./error-text.js";
import { parseLenient, type SseEvent, SseParser } from "./sse.js";

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
