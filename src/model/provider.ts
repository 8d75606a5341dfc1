/** Chat messages in the chat-completions shape, as stored in `messages.body`. */
export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: ToolCall[] }
  | { role: "tool"; tool_call_id: string; content: string };

export interface ToolCall {
  id: string;
  type: "function";
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

export interface ChatResponse {
  content: string;
  toolCalls: ToolCall[];
  finishReason: string | null;
}

/** A model provider: one streamed chat completion with tools. */
export interface ModelProvider {
  readonly name: string;
  chat(request: ChatRequest, options: { signal: AbortSignal; onText(delta: string): void }): Promise<ChatResponse>;
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

export interface OpenAiOptions {
  baseUrl: string;
  apiKey?: string;
  /** Attempts on 429, 5xx and network errors, the first included. */
  attempts?: number;
  /** First backoff; doubles each retry (Retry-After wins when the server sends it). */
  backoffMs?: number;
  fetch?: typeof fetch;
}

const CONTEXT_LENGTH = /context[_ ]length|maximum context|too many tokens|context window/i;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/**
 * A chat-completions provider for OpenAI-compatible endpoints (OpenAI, vLLM,
 * llama.cpp, OpenRouter, Ollama's /v1): streamed responses with tool calls,
 * retries with backoff on 429 and 5xx, and context-length refusals reported
 * as `ContextLengthError`.
 */
export class OpenAiCompatibleProvider implements ModelProvider {
  constructor(
    readonly name: string,
    private readonly options: OpenAiOptions,
  ) {}

  async chat(request: ChatRequest, options: { signal: AbortSignal; onText(delta: string): void }): Promise<ChatResponse> {
    const attempts = this.options.attempts ?? 4;
    let backoff = this.options.backoffMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await (this.options.fetch ?? fetch)(`${this.options.baseUrl.replace(/\/+$/, "")}/chat/completions`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "text/event-stream",
            ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
          },
          body: JSON.stringify({ model: request.model, messages: request.messages, tools: request.tools, stream: true }),
          signal: options.signal,
        });
      } catch (error) {
        if (options.signal.aborted) throw error;
        if (attempt >= attempts) throw new ProviderError(`${this.name}: ${error instanceof Error ? error.message : String(error)}`);
        await sleep(backoff, options.signal);
        backoff *= 2;
        continue;
      }
      if (response.ok) return this.#read(response, options);
      const text = await response.text().catch(() => "");
      if (response.status === 400 || response.status === 413) {
        if (CONTEXT_LENGTH.test(text)) throw new ContextLengthError(`${this.name}: the conversation is longer than the model's context (${firstLine(text)})`);
      }
      const retryable = response.status === 429 || response.status >= 500;
      if (!retryable || attempt >= attempts) {
        throw new ProviderError(`${this.name}: HTTP ${response.status}${text ? `: ${firstLine(text)}` : ""}`, response.status);
      }
      const retryAfter = Number(response.headers.get("retry-after"));
      await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : backoff, options.signal);
      backoff *= 2;
    }
  }

  async #read(response: Response, options: { onText(delta: string): void }): Promise<ChatResponse> {
    let content = "";
    let finishReason: string | null = null;
    const calls: { id: string; name: string; arguments: string }[] = [];
    const take = (payload: string) => {
      if (payload === "[DONE]") return;
      const event = JSON.parse(payload) as {
        choices?: {
          delta?: { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] };
          finish_reason?: string | null;
          message?: { content?: string | null; tool_calls?: ToolCall[] };
        }[];
        error?: { message?: string };
      };
      if (event.error) throw new ProviderError(`${this.name}: ${event.error.message ?? "error in stream"}`);
      const choice = event.choices?.[0];
      if (!choice) return;
      if (choice.finish_reason) finishReason = choice.finish_reason;
      const delta = choice.delta ?? {};
      if (delta.content) {
        content += delta.content;
        options.onText(delta.content);
      }
      for (const part of delta.tool_calls ?? []) {
        const call = (calls[part.index] ??= { id: "", name: "", arguments: "" });
        if (part.id) call.id = part.id;
        if (part.function?.name) call.name += part.function.name;
        if (part.function?.arguments) call.arguments += part.function.arguments;
      }
      // A server that ignores `stream` answers with one whole message.
      if (choice.message) {
        if (choice.message.content) {
          content += choice.message.content;
          options.onText(choice.message.content);
        }
        for (const call of choice.message.tool_calls ?? []) calls.push({ id: call.id, name: call.function.name, arguments: call.function.arguments });
      }
    };
    const type = response.headers.get("content-type") ?? "";
    if (!type.includes("text/event-stream")) {
      take(await response.text());
    } else {
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf("\n")) !== -1) {
          const line = buffered.slice(0, newline).replace(/\r$/, "");
          buffered = buffered.slice(newline + 1);
          if (line.startsWith("data:")) take(line.slice(5).trim());
        }
      }
      if (buffered.startsWith("data:")) take(buffered.slice(5).trim());
    }
    return {
      content,
      finishReason,
      toolCalls: calls
        .filter(Boolean)
        .map((c, i) => ({ id: c.id || `call_${i}`, type: "function", function: { name: c.name, arguments: c.arguments || "{}" } })),
    };
  }
}

function firstLine(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string };
    const message = typeof parsed.error === "string" ? parsed.error : parsed.error?.message;
    if (message) return message.slice(0, 300);
  } catch {
    // not JSON
  }
  return text.split("\n")[0]!.slice(0, 300);
}
