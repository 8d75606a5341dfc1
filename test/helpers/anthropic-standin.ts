import type { ServerResponse } from "node:http";
import { type Handler, pieces, type Received, StandIn, sse, writeEvents } from "./standin-http.js";

/** A Messages API request as the stand-in records it. */
export interface MessagesRequest {
  model: string;
  max_tokens: number;
  stream?: boolean;
  system?: { type: "text"; text: string; cache_control?: { type: string } }[];
  tools?: { name: string; description: string; input_schema: object; cache_control?: { type: string } }[];
  messages: { role: "user" | "assistant"; content: string | ({ type: string; cache_control?: { type: string } } & Record<string, unknown>)[] }[];
  thinking?: { type: string; budget_tokens?: number };
}

/** One scripted answer: text, a thinking block, tool uses (their input streamed in `pieces` parts), the stop reason and usage. */
export interface MessagesReply {
  text?: string;
  thinking?: { text: string; signature: string };
  tools?: { id: string; name: string; input: object; pieces?: number }[];
  stopReason?: string;
  usage?: { input_tokens: number; output_tokens: number; cache_read_input_tokens?: number; cache_creation_input_tokens?: number };
}

/**
 * The event sequence the Messages API documents for a streamed answer (docs "Streaming Messages"): message_start,
 * then per content block content_block_start, its deltas (text_delta, thinking_delta then signature_delta,
 * input_json_delta), content_block_stop; a ping; message_delta with the stop reason and output usage; message_stop.
 */
export function messagesEvents(reply: MessagesReply, id = "msg_01standin"): string[] {
  const usage = reply.usage ?? { input_tokens: 25, output_tokens: 1 };
  const events = [
    sse("message_start", {
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        content: [],
        model: "claude-standin",
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: usage.input_tokens,
          output_tokens: 1,
          cache_read_input_tokens: usage.cache_read_input_tokens ?? 0,
          cache_creation_input_tokens: usage.cache_creation_input_tokens ?? 0,
        },
      },
    }),
  ];
  let index = 0;
  if (reply.thinking) {
    events.push(sse("content_block_start", { type: "content_block_start", index, content_block: { type: "thinking", thinking: "", signature: "" } }));
    for (const part of pieces(reply.thinking.text, 2)) {
      events.push(sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: part } }));
    }
    events.push(sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "signature_delta", signature: reply.thinking.signature } }));
    events.push(sse("content_block_stop", { type: "content_block_stop", index }));
    index++;
  }
  events.push(sse("ping", { type: "ping" }));
  if (reply.text) {
    events.push(sse("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }));
    for (const word of reply.text.split(/(?<= )/)) {
      events.push(sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: word } }));
    }
    events.push(sse("content_block_stop", { type: "content_block_stop", index }));
    index++;
  }
  for (const tool of reply.tools ?? []) {
    events.push(
      sse("content_block_start", { type: "content_block_start", index, content_block: { type: "tool_use", id: tool.id, name: tool.name, input: {} } }),
    );
    events.push(sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: "" } }));
    for (const part of pieces(JSON.stringify(tool.input), tool.pieces ?? 3)) {
      events.push(sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: part } }));
    }
    events.push(sse("content_block_stop", { type: "content_block_stop", index }));
    index++;
  }
  const stop = reply.stopReason ?? (reply.tools?.length ? "tool_use" : "end_turn");
  events.push(
    sse("message_delta", { type: "message_delta", delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }),
  );
  events.push(sse("message_stop", { type: "message_stop" }));
  return events;
}

/** An error body as the API documents them: {type: "error", error: {type, message}}. */
export const anthropicError = (type: string, message: string) => ({ type: "error", error: { type, message } });

/**
 * A stand-in for the Anthropic Messages API (POST /v1/messages, streamed), and GET /v1/models/{id} with the
 * model's `max_input_tokens` when `contextWindow` is set.
 */
export class AnthropicStandIn extends StandIn<MessagesRequest> {
  contextWindow: number | null = null;

  constructor() {
    super(
      (method, path) => method === "POST" && path === "/v1/messages",
      (_req, res) => void writeEvents(res, messagesEvents({ text: "(the script has no more answers)" })),
    );
  }

  static async launch(): Promise<AnthropicStandIn> {
    return new AnthropicStandIn().start();
  }

  protected override fallback(request: Received<MessagesRequest>, res: ServerResponse): boolean {
    const m = /^\/v1\/models\/(.+)$/.exec(request.path);
    if (!m || request.method !== "GET") return false;
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        type: "model",
        id: decodeURIComponent(m[1]!),
        display_name: "Stand-in",
        created_at: "2025-01-01T00:00:00Z",
        max_input_tokens: this.contextWindow,
        max_tokens: 8192,
      }),
    );
    return true;
  }

  /** Scripted answers: a reply streams its events; an error is an HTTP status with the documented body. */
  answer(...replies: (MessagesReply | { status: number; type: string; message: string; headers?: Record<string, string> } | Handler<MessagesRequest>)[]): void {
    this.script(
      ...replies.map((reply): Handler<MessagesRequest> => {
        if (typeof reply === "function") return reply;
        if ("status" in reply) {
          return (_req, res) =>
            void res
              .writeHead(reply.status, { "content-type": "application/json", ...reply.headers })
              .end(JSON.stringify(anthropicError(reply.type, reply.message)));
        }
        return (_req, res) => writeEvents(res, messagesEvents(reply));
      }),
    );
  }
}
