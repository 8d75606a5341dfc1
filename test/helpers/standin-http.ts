import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a stand-in received: method, path, headers and parsed JSON body. */
export interface Received<Body> {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: Body;
}

/** What a stand-in does with one request: answer (it writes `res`), or never answer. */
export type Handler<Body> = (request: Received<Body>, res: ServerResponse) => Promise<void> | void;

/**
 * A real HTTP server on 127.0.0.1 that records every request and answers each from a script (one handler per
 * request, in order), the base of the providers' stand-ins. `fallback` answers requests the script does not
 * (model lists).
 */
export class StandIn<Body> {
  readonly requests: Received<Body>[] = [];
  #server!: Server;
  #script: Handler<Body>[] = [];
  #waiters: { count: number; resolve: () => void }[] = [];

  constructor(
    private readonly accepts: (method: string, path: string) => boolean,
    private readonly exhausted: Handler<Body> = (_req, res) => void res.writeHead(500).end("the script has no more answers"),
  ) {}

  /** Answers a request the script does not take (a model list); false: 404. */
  protected fallback(_request: Received<Body>, _res: ServerResponse): boolean {
    return false;
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", () => resolve()));
    return this;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  script(...handlers: Handler<Body>[]): void {
    this.#script.push(...handlers);
  }

  received(count: number): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  reset(): void {
    this.requests.length = 0;
    this.#script = [];
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = "";
    for await (const chunk of req) text += chunk;
    const path = (req.url ?? "/").split("?")[0]!;
    const received: Received<Body> = { method: req.method ?? "GET", path, headers: req.headers, body: (text ? JSON.parse(text) : {}) as Body };
    if (!this.accepts(received.method, path)) {
      if (!this.fallback(received, res)) res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      return;
    }
    this.requests.push(received);
    for (const w of this.#waiters.filter((w) => this.requests.length >= w.count)) w.resolve();
    const next = this.#script.shift() ?? this.exhausted;
    await next(received, res);
  }
}

/** Writes server-sent events one by one, a turn of the clock apart, as a server streaming them does. */
export async function writeEvents(res: ServerResponse, events: readonly string[], end: "end" | "cut" | "hang" = "end"): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const event of events) {
    res.write(event);
    await new Promise((r) => setTimeout(r, 2));
  }
  if (end === "cut") {
    await new Promise((r) => setTimeout(r, 30));
    res.socket?.destroy();
  } else if (end === "end") res.end();
}

/** `event: NAME\ndata: JSON\n\n`, the framing both APIs document. */
export const sse = (name: string, data: object) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

/** Splits text into `n` pieces of about the same size (the last may be empty if the text is short). */
export function pieces(text: string, n: number): string[] {
  const size = Math.ceil(text.length / n);
  return Array.from({ length: n }, (_, i) => text.slice(i * size, (i + 1) * size));
}
