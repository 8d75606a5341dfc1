/**
 * The model providers' public face: the chat types and errors every caller uses. The parts live by job:
 * `chat.ts` (types, errors), `attempts.ts` (retries, the silence watchdog), `answer-assembly.ts` (a chat completion
 * from its pieces), `error-text.ts` (a server's failure in words), and one file per API, each on the SDK that owns
 * its wire format: `openai-compatible.ts` (chat completions), `openai-responses.ts` (the Responses API),
 * `anthropic.ts` (the Messages API).
 *
 * The providers themselves are not re-exported here: they are imported from their own files when a configured model
 * is first used (src/features/agent/index.ts), so a server that calls no model never loads an SDK (~1.3 MB of
 * JavaScript, ~60 ms of a start's CPU). A value re-export here put them in every importer's graph
 * (test/packages/start-modules.test.ts).
 */

export { DEFAULT_MODEL_TIMEOUT_MS } from "./attempts.js";
export * from "./chat.js";
export { parseLenient } from "./error-text.js";
