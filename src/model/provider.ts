/**
 * The model providers' public face: the chat types and errors every caller uses, and the providers. The parts
 * live by job: `chat.ts` (types, errors), `attempts.ts` (retries, the silence watchdog), `answer-assembly.ts` (a
 * chat completion from its pieces), `error-text.ts` (a server's failure in words), and one file per API, each on
 * the SDK that owns its wire format: `openai-compatible.ts` (chat completions), `openai-responses.ts` (the
 * Responses API), `anthropic.ts` (the Messages API).
 */

export { type AnthropicOptions, AnthropicProvider } from "./anthropic.js";
export { DEFAULT_MODEL_TIMEOUT_MS } from "./attempts.js";
export * from "./chat.js";
export { parseLenient } from "./error-text.js";
export { OpenAiCompatibleProvider, type OpenAiOptions } from "./openai-compatible.js";
export { OpenAiResponsesProvider } from "./openai-responses.js";
