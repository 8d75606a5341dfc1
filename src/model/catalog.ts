/**
 * What Spool knows of well-known model ids without asking: their context windows and their list prices. An id
 * matches its longest known prefix (`claude-sonnet-4-5-20250929` is `claude-sonnet-4-5`). Config overrides both
 * (`models.<alias>.contextTokens`, `prices`), and a provider's model list that states a window wins over this one.
 */
import type { Usage } from "./chat.js";

/** US dollars per million tokens: input, output, and the prompt cache's reads and writes. */
export interface Price {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
}

/** Context windows (input tokens) of well-known ids. */
export const CONTEXT_WINDOWS: Readonly<Record<string, number>> = {
  "claude-": 200_000,
  "gpt-4o": 128_000,
  "gpt-4.1": 1_047_576,
  "gpt-5": 400_000,
  o1: 200_000,
  o3: 200_000,
  "o4-mini": 200_000,
  "gemini-": 1_048_576,
};

/** List prices of well-known ids (USD per million tokens). */
export const PRICES: Readonly<Record<string, Price>> = {
  "claude-opus-4-5": { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 },
  "claude-opus-4": { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
  "claude-sonnet-4": { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  "claude-3-7-sonnet": { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  "claude-3-5-sonnet": { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  "claude-haiku-4-5": { input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25 },
  "claude-3-5-haiku": { input: 0.8, output: 4, cacheRead: 0.08, cacheWrite: 1 },
  "gpt-4o-mini": { input: 0.15, output: 0.6, cacheRead: 0.075 },
  "gpt-4o": { input: 2.5, output: 10, cacheRead: 1.25 },
  "gpt-4.1-nano": { input: 0.1, output: 0.4, cacheRead: 0.025 },
  "gpt-4.1-mini": { input: 0.4, output: 1.6, cacheRead: 0.1 },
  "gpt-4.1": { input: 2, output: 8, cacheRead: 0.5 },
  "gpt-5-nano": { input: 0.05, output: 0.4, cacheRead: 0.005 },
  "gpt-5-mini": { input: 0.25, output: 2, cacheRead: 0.025 },
  "gpt-5": { input: 1.25, output: 10, cacheRead: 0.125 },
  o3: { input: 2, output: 8, cacheRead: 0.5 },
  "o4-mini": { input: 1.1, output: 4.4, cacheRead: 0.275 },
};

/** The value of the longest key of `table` that `id` starts with. */
export function byPrefix<T>(table: Readonly<Record<string, T>>, id: string): T | undefined {
  let best: string | undefined;
  for (const key of Object.keys(table)) if (id.startsWith(key) && (best === undefined || key.length > best.length)) best = key;
  return best === undefined ? undefined : table[best];
}

/** What one call cost, in micro-dollars (an integer), at `price`; 0 without one. */
export function costMicroUsd(usage: Usage, price: Price | undefined): number {
  if (!price) return 0;
  const read = usage.cacheReadTokens ?? 0;
  const write = usage.cacheWriteTokens ?? 0;
  const fresh = Math.max(0, usage.promptTokens - read - write);
  // Tokens × dollars per million tokens = micro-dollars.
  return Math.round(
    fresh * price.input + read * (price.cacheRead ?? price.input) + write * (price.cacheWrite ?? price.input) + usage.completionTokens * price.output,
  );
}
