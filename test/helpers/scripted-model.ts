import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the scripted model answers to one request. */
export type Reply =
  | { text?: string; tools?: { name: string; arguments: object; id?: string }[]; delayMs?: number }
  | { status: number; body: object | string; headers?: Record<string, string> };

export interface RecordedRequest {
  model: string;
  messages: { role: string; content: string | null; tool_calls?: { id: string; function: { name: string; arguments: string } }[]; tool_call_id?: string }[];
  tools: { function: { name: string } }[];
  stream: boolean;
}

/**
 * A real HTTP server speaking the OpenAI chat-completions API with streamed
 * (SSE) answers taken from a script, one per request; it records every
 * request so tests can read what the model was sent.
 */
export class ScriptedModel {
  readonly requests: RecordedRequest[] = [];
  #server!: Server;
  #script: ((request: RecordedRequest) => Reply)[] = [];
  #waiters: { count: number; resolve: () => void }[] = [];

  static async start(): Promise<ScriptedModel> {
    const model = new ScriptedModel();
    model.#server = createServer((req, res) => void model.#handle(req, res));
    await new Promise<void>((resolve) => model.#server.listen(0, "127.0.0.1", () => resolve()));
    return model;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
  }

  /** Queues answers for the next requests, in order. */
  reply(...replies: (Reply | ((request: RecordedRequest) => Reply))[]): void {
    this.#script.push(...replies.map((r) => (typeof r === "function" ? r : () => r)));
  }

  /** Resolves once `count` requests have arrived in all. */
  received(count: number): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: import("node:http").ServerResponse): Promise<void> {
    let body = "";
    for await (const chunk of req) body += chunk;
    if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const request = JSON.parse(body) as RecordedRequest;
    this.requests.push(request);
    for (const w of this.#waiters.filter((w) => this.requests.length >= w.count)) w.resolve();
    const next = this.#script.shift();
    const reply: Reply = next ? next(request) : { text: "(the script has no more answers)" };
    if ("status" in reply) {
      res
        .writeHead(reply.status, { "content-type": "application/json", ...reply.headers })
        .end(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body));
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const send = (delta: object, finish: string | null = null) =>
      res.write(`data: ${JSON.stringify({ id: "chatcmpl-test", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
    send({ role: "assistant" });
    for (const word of (reply.text ?? "").split(/(?<= )/).filter(Boolean)) {
      send({ content: word });
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    }
    for (const [index, tool] of (reply.tools ?? []).entries()) {
      const args = JSON.stringify(tool.arguments);
      const half = Math.floor(args.length / 2);
      // Arguments arrive in pieces, as real servers send them.
      send({
        tool_calls: [
          { index, id: tool.id ?? `call_${this.requests.length}_${index}`, type: "function", function: { name: tool.name, arguments: args.slice(0, half) } },
        ],
      });
      send({ tool_calls: [{ index, function: { arguments: args.slice(half) } }] });
    }
    send({}, reply.tools?.length ? "tool_calls" : "stop");
    res.end("data: [DONE]\n\n");
  }
}

/** The content of the tool message answering `callId`, from a recorded request. */
export function toolResult(request: RecordedRequest, callId: string): string | undefined {
  return request.messages.find((m) => m.role === "tool" && m.tool_call_id === callId)?.content ?? undefined;
}
