/** The chat-completions shapes a provider takes and gives, and the errors it fails with. */
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
