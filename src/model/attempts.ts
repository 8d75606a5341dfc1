/**
 * What every provider does around its SDK's one call: retries with backoff (429, 529 and other 5xx, network
 * errors, a connection cut mid-answer; `retry-after` wins), and a watchdog that fails a server staying silent
 * (before its first byte, and between chunks). The SDKs own the wire; their own retries are off, so that
 * every retry is announced to the run's clients and a cut stream is retried too.
 */
import type { Echo } from "./answer-assembly.js";
import { type ChatOptions, ContextLengthError, ProviderError } from "./chat.js";

/** A failure worth another attempt (429, 5xx, network error, a cut stream). */
export class Retryable extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export const DEFAULT_MODEL_TIMEOUT_MS = 120_000;

/** How many attempts and how long between them. */
export interface RetryPolicy {
  /** Attempts, the first included (default 4). */
  attempts?: number;
  /** First backoff; doubles each retry (a `retry-after` header wins). */
  backoffMs?: number;
}

/** HTTP answers worth asking again: too many requests, overloaded (529), and the server's own failures (5xx). */
export const retryableHttp = (code: number) => code === 429 || (code >= 500 && code <= 599);

/** Provider answers that mean the conversation no longer fits the model's window. */
export const CONTEXT_LENGTH = /context[_ ]length|maximum context|too many tokens|context window|prompt is too long|input is too long|exceeds the context/i;

/** Milliseconds a `retry-after-ms` or `retry-after` header asks for (seconds, or an HTTP date), if it says. */
export function retryAfterMs(headers: Headers | undefined | null): number | undefined {
  const ms = Number.parseFloat(headers?.get("retry-after-ms") ?? "");
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers?.get("retry-after");
  if (raw === undefined || raw === null || raw === "") return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

export const sleep = (ms: number, signal: AbortSignal) =>
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

/**
 * Runs `attempt` until it succeeds, fails for good, or the attempts are spent; `where` names the endpoint in the
 * final error. Each attempt gets its own signal (aborted with the caller's).
 */
export async function withRetries<T>(
  name: string,
  where: string,
  policy: RetryPolicy,
  options: Pick<ChatOptions, "signal" | "onRetry">,
  attempt: (n: number) => Promise<T>,
): Promise<T> {
  const attempts = policy.attempts ?? 4;
  let backoff = policy.backoffMs ?? 500;
  for (let n = 1; ; n++) {
    let delay: number;
    let reason: string;
    try {
      return await attempt(n);
    } catch (error) {
      if (options.signal.aborted) throw options.signal.reason ?? error;
      if (!(error instanceof Retryable)) throw error;
      if (n >= attempts) throw new ProviderError(`${name}: ${error.message} (${where}, ${attempts} attempts)`);
      reason = error.message;
      delay = error.retryAfterMs ?? backoff;
    }
    options.onRetry?.({ attempt: n + 1, reason, delayMs: delay });
    if (delay > 0) await sleep(delay, options.signal);
    backoff *= 2;
  }
}

/** One attempt's plumbing: a signal aborted by the caller's or by the watchdog, and a fetch that arms it. */
export class AttemptWatch {
  readonly controller = new AbortController();
  fired: "first byte" | "chunk" | null = null;
  /** The start of the answer's body as text, while it holds no server-sent event (a server that ignored `stream`). */
  head = "";
  /** Whether the body held `data: [DONE]`, the chat-completions end mark the SDK does not pass on. */
  sawDone = false;
  #timer: NodeJS.Timeout | undefined;
  #tail = "";
  readonly #unlink: () => void;

  constructor(
    private readonly timeoutMs: number,
    signal: AbortSignal,
  ) {
    const onAbort = () => this.controller.abort(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#unlink = () => signal.removeEventListener("abort", onAbort);
  }

  arm(phase: "first byte" | "chunk"): void {
    clearTimeout(this.#timer);
    if (this.timeoutMs <= 0) return;
    this.#timer = setTimeout(() => {
      this.fired = phase;
      this.controller.abort(new Error(`no ${phase} within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
  }

  /** Clears the timer and lets go of the caller's signal; aborts the attempt's request if it was left unread. */
  close(): void {
    clearTimeout(this.#timer);
    this.#unlink();
    this.controller.abort();
  }

  /** The fetch to give the SDK: the watchdog is armed until the first byte, then again at every chunk of the body. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    this.arm("first byte");
    // The SDK passes a signal that the attempt's (given as its request option) aborts. Its JSON body goes as bytes:
    // fetch keeps a string body as a well-formed copy for the whole exchange (String.prototype.toWellFormed copies
    // every string with a character past Latin-1), ~100 KB of the V8 heap a turn on a long run that lives long
    // enough to reach the old generation, which then grew by it until its next full collection (bench/agent-turns.ts).
    const sent = typeof init?.body === "string" ? Buffer.from(init.body) : init?.body;
    const response = await fetch(input, init && { ...init, body: sent });
    if (!response.body) return response;
    this.arm("chunk");
    const decoder = new TextDecoder();
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, out) => {
          this.arm("chunk");
          this.#observe(decoder.decode(chunk, { stream: true }));
          out.enqueue(chunk);
        },
      }),
    );
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };

  #observe(text: string): void {
    if (this.head.length < 1_000_000 && !/(?:^|\n)data:/.test(this.head)) this.head += text;
    const seen = this.#tail + text;
    if (seen.includes("data: [DONE]") || seen.includes("data:[DONE]")) this.sawDone = true;
    this.#tail = seen.slice(-16);
  }

  /** The error for a server that stayed silent past the timeout. */
  timedOut(name: string, url: string): ProviderError {
    const seconds = this.timeoutMs / 1000;
    return new ProviderError(
      this.fired === "first byte"
        ? `${name}: ${url} did not answer within ${seconds} s (SPOOL_MODEL_TIMEOUT_MS)`
        : `${name}: ${url} sent nothing for ${seconds} s in the middle of its answer (SPOOL_MODEL_TIMEOUT_MS)`,
    );
  }
}

/** One attempt's stream as `readStream` reads it: the attempt's plumbing, and what the provider does at each step. */
export interface StreamAttempt<E> {
  signal: AbortSignal;
  watch: AttemptWatch;
  echo: Echo;
  /** Asks the SDK for the stream (the request goes out). */
  open(): Promise<AsyncIterable<E>>;
  /** One event of it. */
  take(event: E): void;
  /** What a failure before the stream began means (thrown as that). */
  before(error: unknown): unknown;
  /** What a failure in the middle of it means (thrown as that). */
  during(error: unknown): unknown;
}

/**
 * Reads one attempt's stream to its end, as every provider does: the events between the echo's attempt marks, each
 * failure as the provider reads it; after a stream that ended quietly the caller's abort and the watchdog come first.
 * Whether the events made a whole answer is the provider's to say.
 */
export async function readStream<E>(provider: { name: string; url: string }, attempt: StreamAttempt<E>): Promise<void> {
  const { signal, watch, echo } = attempt;
  let stream: AsyncIterable<E>;
  try {
    stream = await attempt.open();
  } catch (error) {
    throw attempt.before(error);
  }
  echo.startAttempt();
  try {
    for await (const event of stream) attempt.take(event);
  } catch (error) {
    throw attempt.during(error);
  } finally {
    echo.endAttempt();
  }
  if (signal.aborted) throw signal.reason;
  if (watch.fired) throw watch.timedOut(provider.name, provider.url);
}

/** Whether an error is one of the outcomes a provider decides itself (passed through unchanged). */
export const isDecided = (error: unknown) => error instanceof ProviderError || error instanceof ContextLengthError || error instanceof Retryable;

/** An SDK's error as both SDKs shape it: an HTTP status and headers when the server answered, its parsed `error` member. */
export interface SdkError {
  status?: number;
  headers?: Headers;
  error?: unknown;
  message: string;
}

/** Whether `error` is an SDK error for an HTTP answer (not a network failure, not an error inside the stream). */
export const isHttpError = (error: unknown): error is SdkError & { status: number } => error instanceof Error && typeof (error as SdkError).status === "number";

/** What an HTTP failure means for the run: a context that no longer fits, another attempt, or a failure for good. */
export function httpFailure(name: string, status: number, text: string, headers: Headers | undefined): Error {
  if ((status === 400 || status === 413) && CONTEXT_LENGTH.test(text)) {
    return new ContextLengthError(`${name}: the conversation is longer than the model's context (${text})`);
  }
  const detail = `HTTP ${status}${text ? `: ${text}` : ""}`;
  if (retryableHttp(status)) return new Retryable(detail, retryAfterMs(headers));
  return new ProviderError(`${name}: ${detail}`, status);
}
