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
 * (then 200). Tests wait for the nth request by event, never by sleeping.
 */
export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Resolves once `n` requests came (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(options: { answers?: number[]; port?: number; delayMs?: number } = {}): Promise<Receiver> {
  const answers = [...(options.answers ?? [])];
  const received: Received[] = [];
  const waiting: { n: number; resolve: () => void }[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const answered = answers.shift() ?? 200;
      received.push({ at: Date.now(), method: request.method ?? "", headers: request.headers, body: Buffer.concat(chunks).toString("utf8"), answered });
      if (options.delayMs) setTimeout(() => response.writeHead(answered).end(), options.delayMs);
      else response.writeHead(answered).end();
      for (const w of [...waiting]) if (received.length >= w.n) w.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    waitFor: (n, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        if (received.length >= n) return resolve(received.slice(0, n));
        const timer = setTimeout(() => reject(new Error(`the receiver got ${received.length} of ${n} requests in ${timeoutMs} ms`)), timeoutMs);
        waiting.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve(received.slice(0, n));
          },
        });
      }),
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
