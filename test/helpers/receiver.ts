import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a receiver got: its headers and its raw body, and the status it was answered with. */
export interface Received {
  at: number;
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

/**
 * A webhook receiver on 127.0.0.1: records every request; answers each with the next status of `answers`
 * (then 200), where `0` is no answer at all (the request stays open until its sender goes away: an attempt in flight).
 * Tests wait for the nth request by event, never by sleeping.
 */
export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Resolves once `n` requests came (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  /**
   * Resolves once requests of `n` different deliveries (X-Spool-Delivery) came, with the first request of each:
   * delivery is at least once, and a delivery sent again carries the same id (the receiver drops one it has seen).
   */
  waitForDeliveries(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(options: { answers?: number[]; port?: number; delayMs?: number } = {}): Promise<Receiver> {
  const answers = [...(options.answers ?? [])];
  const received: Received[] = [];
  const waiting: (() => void)[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const answered = answers.shift() ?? 200;
      received.push({ at: Date.now(), method: request.method ?? "", headers: request.headers, body: Buffer.concat(chunks).toString("utf8"), answered });
      // 0: no answer, the request stays in flight until its sender goes away.
      if (answered !== 0 && options.delayMs) setTimeout(() => response.writeHead(answered).end(), options.delayMs);
      else if (answered !== 0) response.writeHead(answered).end();
      for (const w of [...waiting]) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  /** Resolves with `found()` once it is not null, looked at after each request (rejects after `timeoutMs`). */
  const until = <T>(found: () => T | null, timeoutMs: number, what: () => string): Promise<T> =>
    new Promise((resolve, reject) => {
      const now = found();
      if (now !== null) return resolve(now);
      const look = () => {
        const result = found();
        if (result === null) return;
        clearTimeout(timer);
        waiting.splice(waiting.indexOf(look), 1);
        resolve(result);
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(look), 1);
        reject(new Error(what()));
      }, timeoutMs);
      waiting.push(look);
    });
  /** The first request of each delivery, in the order they came. */
  const firstOfEach = () => {
    const seen = new Set<string>();
    return received.filter((r) => {
      const id = String(r.headers["x-spool-delivery"]);
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    waitFor: (n, timeoutMs = 10_000) =>
      until(
        () => (received.length >= n ? received.slice(0, n) : null),
        timeoutMs,
        () => `the receiver got ${received.length} of ${n} requests in ${timeoutMs} ms`,
      ),
    waitForDeliveries: (n, timeoutMs = 10_000) =>
      until(
        () => {
          const first = firstOfEach();
          return first.length >= n ? first.slice(0, n) : null;
        },
        timeoutMs,
        () => `the receiver got requests of ${firstOfEach().length} of ${n} deliveries in ${timeoutMs} ms`,
      ),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Whether `signature` (X-Spool-Signature) is sha256= the HMAC-SHA256 of `body` under `secret`. */
export function signedBy(body: string, signature: string | string[] | undefined, secret: string): boolean {
  return signature === `sha256=${createHmac("sha256", secret).update(body, "utf8").digest("hex")}`;
}
