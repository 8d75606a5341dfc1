/**
 * The model provider's public face: the chat types and errors every caller uses, and the
 * OpenAI-compatible provider. The parts live by job: `chat.ts` (types, errors), `sse.ts` (the
 * event-stream parser), `answer-assembly.ts` (a completion from its pieces), `error-text.ts` (a
 * server's failure in words) and `openai-compatible.ts` (requests, retries, timeouts).
 */
export * from "./chat.js";
export { DEFAULT_MODEL_TIMEOUT_MS, OpenAiCompatibleProvider, type OpenAiOptions } from "./openai-compatible.js";
export { parseLenient, type SseEvent, SseParser } from "./sse.js";
