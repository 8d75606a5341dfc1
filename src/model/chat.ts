/**
 * The conversation as Spool keeps it, whatever the provider: chat-completions-shaped messages (each provider
 * turns them into its own API's shape), the errors a provider fails with, and what it reports back.
 */
/** Chat messages as stored and handed to a provider. */
export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: ToolCall[]; thinking?: ThinkingItem[] }
  | { role: "tool"; tool_call_id: string; content: string };

/**
 * A piece of the model's reasoning that its API wants sent back unchanged with the reply it belongs to
 * (Anthropic's signed `thinking` and `redacted_thinking` blocks, a Responses `reasoning` item), kept opaque
 * and tagged with the provider kind that made it: another provider never gets it.
 */
export interface ThinkingItem {
  kind: "anthropic" | "openai-responses";
  block: Record<string, unknown>;
}

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
  /** A key that stays the same across a run's calls (its id), for APIs that route prompt caching by one. */
  cacheKey?: string;
}

/** Token counts as the server reported them for one completion. */
export interface Usage {
  /** Every input token, cached ones included (Anthropic's input, cache reads and cache writes added up). */
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Input tokens read from the provider's prompt cache. */
  cacheReadTokens?: number;
  /** Input tokens written to the provider's prompt cache. */
  cacheWriteTokens?: number;
}

export interface ChatResponse {
  content: string;
  toolCalls: ToolCall[];
  /** `stop`, `tool_calls`, `length` (cut at max_tokens)…; null when the server sent none (the answer still ended with `[DONE]`). */
  finishReason: string | null;
  usage?: Usage;
  /** Reasoning to send back with this reply (see ThinkingItem). */
  thinking?: ThinkingItem[];
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
  /** The model's context window in tokens, when the provider's model list says it; undefined when it does not. */
  contextWindow?(model: string, signal: AbortSignal): Promise<number | undefined>;
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
