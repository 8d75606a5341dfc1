import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A tool call the scripted model makes; string arguments are sent verbatim (malformed ones too). */
export interface ScriptedTool {
  name: string;
  arguments: object | string;
  id?: string;
}

/**
 * How tool calls are streamed: `split` (index and id, arguments in two
 * pieces, as OpenAI does), `no-index` (ids but no index, arguments in two
 * pieces), `no-id` (index but no id), `whole` (older Ollama: every call
 * whole in one chunk, no index, no id).
 */
export type ToolShape = "split" | "no-index" | "no-id" | "whole";

/** What the scripted model answers to one request. */
export type Reply =
  | {
      text?: string;
      tools?: ScriptedTool[];
      delayMs?: number;
      toolShape?: ToolShape;
      /** finish_reason of the last chunk (default "tool_calls" with tools, else "stop"); null sends none. */
      finishReason?: string | null;
      /** Sent as a last, usage-only chunk (`choices: []`), as servers do with stream_options.include_usage. */
      usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
      /** false: the stream ends without `data: [DONE]`. */
      done?: boolean;
      /** Lines end in CRLF. */
      crlf?: boolean;
      /** The server dies after this many pieces of text: the connection is destroyed mid-answer. */
      cutAfter?: number;
      /**
       * The answer waits for this after its text, before its tool calls and its end: a test sees the text while it
       * is still streaming, however slow the machine (a live state that lasted only `delayMs` a word could be missed).
       */
      pause?: Promise<unknown>;
    }
  | { status: number; body: object | string; headers?: Record<string, string> }
  /** Raw SSE text written as it is, piece by piece; then the response ends, the connection is cut, or the server goes silent. */
  | { raw: string[]; contentType?: string; after?: "end" | "cut" | "hang" }
  /** The server takes the request and never answers. */
  | { hang: true };

export interface RecordedRequest {
  model: string;
  messages: { role: string; content: string | null; tool_calls?: { id: string; function: { name: string; arguments: string } }[]; tool_call_id?: string }[];
  tools: { function: { name: string } }[];
  stream: boolean;
  max_tokens?: number;
  stream_options?: { include_usage?: boolean };
}

/**
 * A real HTTP server speaking the OpenAI chat-completions API with streamed
 * (SSE) answers taken from a script, one per request; it records every
 * request so tests can read what the model was sent.
 */
export class ScriptedModel {
  readonly requests: RecordedRequest[] = [];
  /** When set, GET /v1/models lists the model with this window, as vLLM says it (`max_model_len`). */
  contextWindow: number | null = null;
  #server!: Server;
  #script: ((request: RecordedRequest) => Reply | Promise<Reply>)[] = [];
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

  /** Queues answers for the next requests, in order (a function may wait for a condition before it answers). */
  reply(...replies: (Reply | ((request: RecordedRequest) => Reply | Promise<Reply>))[]): void {
    this.#script.push(...replies.map((r) => (typeof r === "function" ? r : () => r)));
  }

  /** Resolves once `count` requests have arrived in all. */
  received(count: number): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  /** Forgets the recorded requests and the answers not given yet (a failed test leaves none behind for the next). */
  reset(): void {
    this.requests.length = 0;
    this.#script = [];
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: import("node:http").ServerResponse): Promise<void> {
    let body = "";
    for await (const chunk of req) body += chunk;
    if (req.url === "/v1/models" && req.method === "GET" && this.contextWindow !== null) {
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ object: "list", data: [{ id: "test-model", object: "model", owned_by: "vllm", max_model_len: this.contextWindow }] }));
      return;
    }
    if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const request = JSON.parse(body) as RecordedRequest;
    this.requests.push(request);
    for (const w of this.#waiters.filter((w) => this.requests.length >= w.count)) w.resolve();
    const next = this.#script.shift();
    const reply: Reply = next ? await next(request) : { text: "(the script has no more answers)" };
    if ("hang" in reply) return; // never answers; close() ends the connection
    if ("status" in reply) {
      res
        .writeHead(reply.status, { "content-type": "application/json", ...reply.headers })
        .end(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body));
      return;
    }
    if ("raw" in reply) {
      res.writeHead(200, { "content-type": reply.contentType ?? "text/event-stream", "cache-control": "no-cache" });
      for (const piece of reply.raw) {
        res.write(piece);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (reply.after === "cut") res.socket?.destroy();
      else if (reply.after !== "hang") res.end();
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const eol = reply.crlf ? "\r\n" : "\n";
    const event = (body: object) => res.write(`data: ${JSON.stringify({ id: "chatcmpl-test", object: "chat.completion.chunk", ...body })}${eol}${eol}`);
    const send = (delta: object, finish: string | null = null) => event({ choices: [{ index: 0, delta, finish_reason: finish }] });
    send({ role: "assistant" });
    for (const [i, word] of (reply.text ?? "")
      .split(/(?<= )/)
      .filter(Boolean)
      .entries()) {
      if (reply.cutAfter !== undefined && i >= reply.cutAfter) {
        // Let the pieces already written reach the client, then die.
        await new Promise((r) => setTimeout(r, 50));
        res.socket?.destroy();
        return;
      }
      send({ content: word });
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    }
    if (reply.pause) await reply.pause;
    const shape = reply.toolShape ?? "split";
    const tools = reply.tools ?? [];
    if (shape === "whole" && tools.length) {
      send({ tool_calls: tools.map((tool) => ({ type: "function", function: { name: tool.name, arguments: argumentsText(tool) } })) });
    } else {
      for (const [index, tool] of tools.entries()) {
        const args = argumentsText(tool);
        const half = Math.floor(args.length / 2);
        const id = shape === "no-id" ? {} : { id: tool.id ?? `call_${this.requests.length}_${index}` };
        const at = shape === "no-index" ? {} : { index };
        // Arguments arrive in pieces, as real servers send them.
        send({ tool_calls: [{ ...at, ...id, type: "function", function: { name: tool.name, arguments: args.slice(0, half) } }] });
        send({ tool_calls: [{ ...at, function: { arguments: args.slice(half) } }] });
      }
    }
    const finish = reply.finishReason === undefined ? (tools.length ? "tool_calls" : "stop") : reply.finishReason;
    send({}, finish);
    if (reply.usage) event({ choices: [], usage: reply.usage });
    res.end(reply.done === false ? undefined : `data: [DONE]${eol}${eol}`);
  }
}

function argumentsText(tool: ScriptedTool): string {
  return typeof tool.arguments === "string" ? tool.arguments : JSON.stringify(tool.arguments);
}

/** The content of the tool message answering `callId`, from a recorded request. */
export function toolResult(request: RecordedRequest, callId: string): string | undefined {
  return request.messages.find((m) => m.role === "tool" && m.tool_call_id === callId)?.content ?? undefined;
}
