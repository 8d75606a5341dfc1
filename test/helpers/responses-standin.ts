import { type Handler, pieces, StandIn, sse, writeEvents } from "./standin-http.js";

/** A Responses API request as the stand-in records it. */
export interface ResponsesRequest {
  model: string;
  instructions?: string;
  input: ({ type?: string; role?: string; content?: unknown; call_id?: string; output?: string; arguments?: string; name?: string } & Record<
    string,
    unknown
  >)[];
  tools?: { type: string; name: string }[];
  stream?: boolean;
  store?: boolean;
  include?: string[];
  prompt_cache_key?: string;
  max_output_tokens?: number;
}

export interface ResponsesReply {
  text?: string;
  reasoning?: { id: string; encrypted: string };
  calls?: { callId: string; name: string; arguments: object; pieces?: number }[];
  /** `max_output_tokens`: the answer ends as response.incomplete. */
  incomplete?: string;
  usage?: { input_tokens: number; output_tokens: number; cached_tokens?: number };
}

/**
 * The event sequence the Responses API documents for a streamed response: response.created, response.in_progress,
 * per output item response.output_item.added, its deltas (output_text.delta inside a content part;
 * function_call_arguments.delta then .done), response.output_item.done with the whole item, and
 * response.completed (or response.incomplete) with usage; every event with its sequence_number.
 */
export function responsesEvents(reply: ResponsesReply, id = "resp_standin"): string[] {
  let seq = 0;
  const ev = (type: string, data: object) => sse(type, { type, sequence_number: seq++, ...data });
  const base = { id, object: "response", created_at: 1_700_000_000, model: "gpt-standin", output: [] as object[], error: null, incomplete_details: null };
  const events = [
    ev("response.created", { response: { ...base, status: "in_progress" } }),
    ev("response.in_progress", { response: { ...base, status: "in_progress" } }),
  ];
  const output: object[] = [];
  let index = 0;
  if (reply.reasoning) {
    const item = { id: reply.reasoning.id, type: "reasoning", summary: [], encrypted_content: reply.reasoning.encrypted };
    events.push(ev("response.output_item.added", { output_index: index, item: { id: item.id, type: "reasoning", summary: [] } }));
    events.push(ev("response.output_item.done", { output_index: index, item }));
    output.push(item);
    index++;
  }
  if (reply.text) {
    const itemId = "msg_standin";
    events.push(
      ev("response.output_item.added", { output_index: index, item: { id: itemId, type: "message", status: "in_progress", content: [], role: "assistant" } }),
    );
    events.push(
      ev("response.content_part.added", { item_id: itemId, output_index: index, content_index: 0, part: { type: "output_text", annotations: [], text: "" } }),
    );
    for (const word of reply.text.split(/(?<= )/)) {
      events.push(ev("response.output_text.delta", { item_id: itemId, output_index: index, content_index: 0, delta: word, logprobs: [] }));
    }
    events.push(ev("response.output_text.done", { item_id: itemId, output_index: index, content_index: 0, text: reply.text, logprobs: [] }));
    const part = { type: "output_text", annotations: [], text: reply.text };
    events.push(ev("response.content_part.done", { item_id: itemId, output_index: index, content_index: 0, part }));
    const item = { id: itemId, type: "message", status: "completed", content: [part], role: "assistant" };
    events.push(ev("response.output_item.done", { output_index: index, item }));
    output.push(item);
    index++;
  }
  for (const call of reply.calls ?? []) {
    const itemId = `fc_${call.callId}`;
    const args = JSON.stringify(call.arguments);
    events.push(
      ev("response.output_item.added", {
        output_index: index,
        item: { type: "function_call", id: itemId, call_id: call.callId, name: call.name, arguments: "", status: "in_progress" },
      }),
    );
    for (const part of pieces(args, call.pieces ?? 3))
      events.push(ev("response.function_call_arguments.delta", { item_id: itemId, output_index: index, delta: part }));
    events.push(ev("response.function_call_arguments.done", { item_id: itemId, output_index: index, arguments: args }));
    const item = { type: "function_call", id: itemId, call_id: call.callId, name: call.name, arguments: args, status: "completed" };
    events.push(ev("response.output_item.done", { output_index: index, item }));
    output.push(item);
    index++;
  }
  const u = reply.usage ?? { input_tokens: 30, output_tokens: 5 };
  const usage = {
    input_tokens: u.input_tokens,
    input_tokens_details: { cached_tokens: u.cached_tokens ?? 0 },
    output_tokens: u.output_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.input_tokens + u.output_tokens,
  };
  if (reply.incomplete) {
    events.push(ev("response.incomplete", { response: { ...base, status: "incomplete", incomplete_details: { reason: reply.incomplete }, output, usage } }));
  } else events.push(ev("response.completed", { response: { ...base, status: "completed", output, usage } }));
  return events;
}

/** A stand-in for the OpenAI Responses API (POST /v1/responses, streamed). */
export class ResponsesStandIn extends StandIn<ResponsesRequest> {
  constructor() {
    super(
      (method, path) => method === "POST" && path === "/v1/responses",
      (_req, res) => void writeEvents(res, responsesEvents({ text: "(the script has no more answers)" })),
    );
  }

  static async launch(): Promise<ResponsesStandIn> {
    return new ResponsesStandIn().start();
  }

  get baseUrl(): string {
    return `${this.origin}/v1`;
  }

  answer(...replies: (ResponsesReply | { status: number; body: object; headers?: Record<string, string> } | Handler<ResponsesRequest>)[]): void {
    this.script(
      ...replies.map((reply): Handler<ResponsesRequest> => {
        if (typeof reply === "function") return reply;
        if ("status" in reply)
          return (_req, res) => void res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers }).end(JSON.stringify(reply.body));
        return (_req, res) => writeEvents(res, responsesEvents(reply));
      }),
    );
  }
}
