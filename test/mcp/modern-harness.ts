/*
 * A raw MCP 2026-07-28 client for tests of /mcp: each request one POST with its _meta and headers, the answer
 * read as JSON or as an SSE stream (its last message with the request's id is the response).
 */

export const VERSION = "2026-07-28";
export const TASKS = "io.modelcontextprotocol/tasks";

export interface Answer {
  status: number;
  contentType: string;
  /** The JSON-RPC response. */
  body: { id?: unknown; result?: Record<string, unknown> & { resultType?: string }; error?: { code: number; message: string; data?: unknown } };
  /** Notifications that came on its SSE stream before it. */
  notifications: { method: string; params?: Record<string, unknown> }[];
}

export interface ModernOptions {
  token: string;
  capabilities?: Record<string, unknown>;
  client?: string;
  /** Headers to set or (value null) to leave out. */
  headers?: Record<string, string | null>;
  version?: string;
}

let nextId = 1;

/** The body and headers of one request (without sending it). */
export function modernRequest(method: string, params: Record<string, unknown>, o: ModernOptions) {
  const id = nextId++;
  const body = {
    jsonrpc: "2.0",
    id,
    method,
    params: {
      ...params,
      _meta: {
        "io.modelcontextprotocol/protocolVersion": o.version ?? VERSION,
        "io.modelcontextprotocol/clientCapabilities": o.capabilities ?? {},
        "io.modelcontextprotocol/clientInfo": { name: o.client ?? "modern-agent", version: "1.0.0" },
      },
    },
  };
  const name = (params.name ?? params.uri ?? params.taskId) as string | undefined;
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    Authorization: `Bearer ${o.token}`,
    "MCP-Protocol-Version": o.version ?? VERSION,
    "Mcp-Method": method,
    ...(name !== undefined ? { "Mcp-Name": name } : {}),
  };
  for (const [k, v] of Object.entries(o.headers ?? {})) {
    for (const existing of Object.keys(headers)) if (existing.toLowerCase() === k.toLowerCase()) delete headers[existing];
    if (v !== null) headers[k] = v;
  }
  return { id, body, headers };
}

/** SSE events' data, parsed. */
function events(text: string): unknown[] {
  return text
    .split(/\n\n/)
    .map((block) =>
      block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n"),
    )
    .filter((d) => d !== "")
    .map((d) => JSON.parse(d) as unknown);
}

/** Sends one request and reads its whole answer. */
export async function modern(url: string, method: string, params: Record<string, unknown>, o: ModernOptions, signal?: AbortSignal): Promise<Answer> {
  const { body, headers } = modernRequest(method, params, o);
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
  const contentType = response.headers.get("content-type") ?? "";
  const text = await response.text();
  if (contentType.startsWith("text/event-stream")) {
    const messages = events(text) as Answer["body"][];
    const final = messages.find((m) => "id" in m && m.id !== undefined && ("result" in m || "error" in m)) ?? {};
    return {
      status: response.status,
      contentType,
      body: final,
      notifications: messages.filter((m) => !("id" in m)) as Answer["notifications"],
    };
  }
  return { status: response.status, contentType, body: text ? (JSON.parse(text) as Answer["body"]) : {}, notifications: [] };
}

/** A tool result's text. */
export const resultText = (result: unknown) =>
  (((result as { content?: unknown } | undefined)?.content ?? []) as { type: string; text?: string }[])
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("\n");

/** An open SSE answer (subscriptions/listen, a legacy GET stream): its events as they come, and whether it ended. */
export async function openStream(
  url: string,
  init: RequestInit,
): Promise<{ status: number; contentType: string; events: unknown[]; ended: Promise<void>; abort(): void }> {
  const controller = new AbortController();
  const response = await fetch(url, { ...init, signal: controller.signal });
  const got: unknown[] = [];
  const ended = (async () => {
    if (!response.body) return;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        const cut = buffered.lastIndexOf("\n\n");
        if (cut >= 0) {
          got.push(...events(buffered.slice(0, cut + 2)));
          buffered = buffered.slice(cut + 2);
        }
      }
    } catch {
      // Aborted or reset: the stream ended.
    }
  })();
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", events: got, ended, abort: () => controller.abort() };
}
