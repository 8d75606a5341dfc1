import OpenAI, { APIConnectionError } from "openai";
import type { ResponseCreateParamsStreaming, ResponseInputItem, ResponseStreamEvent } from "openai/resources/responses/responses";
import { Echo } from "./answer-assembly.js";
import { AttemptWatch, CONTEXT_LENGTH, DEFAULT_MODEL_TIMEOUT_MS, httpFailure, isDecided, isHttpError, Retryable, readStream, withRetries } from "./attempts.js";
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
} from "./chat.js";
import { clip, describe, errorText } from "./error-text.js";
import type { OpenAiOptions } from "./openai-compatible.js";
import { sdkLogger } from "./sdk-logger.js";

/** Spool's conversation as Responses input items: the system prompt as `instructions`, calls and outputs as their items. */
export function toResponsesInput(messages: readonly ChatMessage[]): { instructions: string; input: ResponseInputItem[] } {
  const instructions: string[] = [];
  const input: ResponseInputItem[] = [];
  for (const m of messages) {
    if (m.role === "system") instructions.push(m.content);
    else if (m.role === "user") input.push({ role: "user", content: m.content });
    else if (m.role === "tool") input.push({ type: "function_call_output", call_id: m.tool_call_id, output: m.content });
    else if (m.role === "assistant") {
      // Reasoning items go back before the reply they led to, as the API asks when tools are in use.
      for (const item of m.thinking ?? []) if (item.kind === "openai-responses") input.push(item.block as unknown as ResponseInputItem);
      if (m.content) input.push({ role: "assistant", content: m.content });
      for (const call of m.tool_calls ?? [])
        input.push({ type: "function_call", call_id: call.id, name: call.function.name, arguments: call.function.arguments });
    }
  }
  return { instructions: instructions.join("\n\n"), input };
}

/**
 * The OpenAI Responses API on the `openai` SDK. Requests are stateless (`store: false`): the conversation is
 * sent whole, reasoning comes back encrypted and is sent again with the reply it belongs to; `prompt_cache_key`
 * (the run) keeps a run's requests on the same cache. Text and function-call arguments stream; the finished
 * items of `response.output_item.done` are what the reply holds.
 */
export class OpenAiResponsesProvider implements ModelProvider {
  constructor(
    readonly name: string,
    private readonly options: OpenAiOptions,
  ) {}

  get url(): string {
    return `${this.options.baseUrl.replace(/\/+$/, "")}/responses`;
  }

  #client(watch: AttemptWatch): OpenAI {
    return new OpenAI({
      baseURL: this.options.baseUrl.replace(/\/+$/, ""),
      apiKey: this.options.apiKey ?? "unused",
      ...(this.options.apiKey ? {} : { defaultHeaders: { authorization: null } }),
      organization: null,
      project: null,
      maxRetries: 0,
      timeout: 2_147_483_647,
      fetch: watch.fetch,
      logger: sdkLogger({}),
    });
  }

  params(request: ChatRequest): ResponseCreateParamsStreaming {
    const { instructions, input } = toResponsesInput(request.messages);
    return {
      model: request.model,
      input,
      stream: true,
      store: false,
      include: ["reasoning.encrypted_content"],
      ...(instructions ? { instructions } : {}),
      ...(request.tools.length
        ? {
            tools: request.tools.map((t) => ({
              type: "function" as const,
              name: t.function.name,
              description: t.function.description,
              parameters: t.function.parameters as Record<string, unknown>,
              strict: false,
            })),
          }
        : {}),
      ...(request.cacheKey ? { prompt_cache_key: request.cacheKey } : {}),
      ...(this.options.maxTokens ? { max_output_tokens: this.options.maxTokens } : {}),
    };
  }

  async chat(request: ChatRequest, options: ChatOptions): Promise<ChatResponse> {
    const echo = new Echo(options.onText);
    return withRetries(this.name, this.url, this.options, options, () => this.#attempt(request, options.signal, echo));
  }

  async #attempt(request: ChatRequest, signal: AbortSignal, echo: Echo): Promise<ChatResponse> {
    const watch = new AttemptWatch(this.options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS, signal);
    let content = "";
    const toolCalls: ToolCall[] = [];
    const thinking: ThinkingItem[] = [];
    let final: (ChatResponse & { ended: boolean }) | undefined;
    const failure = (error: unknown) => this.#failure(error, signal, watch);
    try {
      await readStream<ResponseStreamEvent>(this, {
        signal,
        watch,
        echo,
        open: () => this.#client(watch).responses.create(this.params(request), { signal: watch.controller.signal }),
        take: (event) => {
          if (event.type === "response.output_text.delta") {
            content += event.delta;
            echo.push(event.delta);
          } else if (event.type === "response.output_item.done") {
            const item = event.item;
            if (item.type === "function_call") toolCalls.push({ id: item.call_id, type: "function", function: { name: item.name, arguments: item.arguments } });
            else if (item.type === "reasoning") thinking.push({ kind: "openai-responses", block: item as unknown as Record<string, unknown> });
          } else if (event.type === "response.completed" || event.type === "response.incomplete") {
            const r = event.response;
            const reason = r.incomplete_details?.reason;
            if (reason === "max_output_tokens") final = { content, toolCalls, finishReason: "length", ended: true };
            else if (event.type === "response.incomplete") final = { content, toolCalls, finishReason: reason ?? "incomplete", ended: true };
            else final = { content, toolCalls, finishReason: toolCalls.length ? "tool_calls" : "stop", ended: true };
            if (r.usage) {
              const cached = r.usage.input_tokens_details?.cached_tokens ?? 0;
              final.usage = {
                promptTokens: r.usage.input_tokens,
                completionTokens: r.usage.output_tokens,
                totalTokens: r.usage.total_tokens,
                ...(cached ? { cacheReadTokens: cached } : {}),
              };
            }
          } else if (event.type === "response.failed") {
            throw this.#serverError(errorText(event.response.error ?? "the response failed"), event.response.error?.code ?? undefined);
          } else if (event.type === "error") {
            throw this.#serverError(errorText({ message: event.message, code: event.code ?? undefined }), event.code ?? undefined);
          }
        },
        before: failure,
        during: failure,
      });
      if (!final) throw new Retryable("the stream ended before the answer was complete");
      const { ended: _ended, ...response } = final;
      return thinking.length ? { ...response, thinking } : response;
    } finally {
      watch.close();
    }
  }

  #serverError(text: string, code?: string): Error {
    const message = clip(text.trim(), 2000);
    if (CONTEXT_LENGTH.test(message) || code === "context_length_exceeded") {
      return new ContextLengthError(`${this.name}: the conversation is longer than the model's context (${message})`);
    }
    if (code === "server_error" || code === "rate_limit_exceeded") return new Retryable(`the server reported: ${message}`);
    return new ProviderError(`${this.name}: the server reported an error: ${message}`);
  }

  #failure(error: unknown, signal: AbortSignal, watch: AttemptWatch): unknown {
    if (signal.aborted) return signal.reason ?? error;
    if (watch.fired) return watch.timedOut(this.name, this.url);
    if (isDecided(error)) return error;
    if (isHttpError(error)) {
      const text = clip(error.error !== undefined && error.error !== null ? errorText(error.error) : error.message.replace(/^\d{3}\s*/, ""), 300);
      const code = (error.error as { code?: unknown } | undefined)?.code;
      if (code === "context_length_exceeded") return new ContextLengthError(`${this.name}: the conversation is longer than the model's context (${text})`);
      return httpFailure(this.name, error.status, text, error.headers);
    }
    if (error instanceof APIConnectionError) return new Retryable(`network error: ${describe(error.cause ?? error)}`);
    if (error instanceof OpenAI.APIError && error.headers !== undefined) return this.#serverError(errorText(error.error));
    return new Retryable(`the connection was cut in the middle of the answer (${describe(error)})`);
  }
}
