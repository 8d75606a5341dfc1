import type { IncomingMessage, ServerResponse } from "node:http";

/*
 * The MCP and ACP SDKs' HTTP servers speak web-standard Request and Response; `spool serve` is node:http. These two
 * carry a request across (its body already read and checked by the door, passed on as text or parsed) and its
 * answer back, streamed (an SSE answer stays open until it ends or the client goes), for both doors alike.
 */

/**
 * A Node request as a web Request, with `body` when given (else none: the SDK is handed the parsed body instead); its
 * signal aborts when the client goes before the answer is out.
 */
export function webRequest(request: IncomingMessage, response: ServerResponse, body?: string): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  const gone = new AbortController();
  response.once("close", () => {
    if (!response.writableFinished) gone.abort(new Error("the client went away"));
  });
  return new Request(urlOf(request), { method: request.method ?? "GET", headers, body, signal: gone.signal });
}

/** The request's URL (its Host was checked by the door; one that is no URL host is read as localhost). */
function urlOf(request: IncomingMessage): URL {
  try {
    return new URL(request.url ?? "/", `http://${request.headers.host ?? "localhost"}`);
  } catch {
    return new URL(request.url ?? "/", "http://localhost");
  }
}

/** How a client that stops reading is let go: past this many bytes written and not taken, or writes waiting this long. */
export interface SendLimits {
  backlogBytes: number;
  stallMs: number;
}

export const SEND_LIMITS: SendLimits = { backlogBytes: 4 * 1024 * 1024, stallMs: 60_000 };

/**
 * Writes a web Response to a Node response, its body as it comes; resolves once it ended or the client went.
 * The body is read as the SDK writes it (a queue of its own, unbounded, would hold what the client does not
 * take): what the client has not taken waits in the response's buffer, and a client that stops reading is cut
 * off once that holds `backlogBytes`, or once writes have waited `stallMs` for it (a stalled SSE stream, whose
 * heartbeats alone would take hours to fill the bound).
 */
export async function sendResponse(answer: Response, response: ServerResponse, limits: SendLimits = SEND_LIMITS): Promise<void> {
  if (response.destroyed) {
    await answer.body?.cancel().catch(() => undefined);
    return;
  }
  const headers: Record<string, string> = {};
  answer.headers.forEach((value, name) => {
    headers[name] = value;
  });
  // Nothing of an answer is for a cache, or to be sniffed as another type.
  headers["cache-control"] ??= "no-store";
  headers["x-content-type-options"] ??= "nosniff";
  response.writeHead(answer.status, headers);
  // An event stream's head goes now, not with its first event (a call waiting for its decision sends none for long).
  if (headers["content-type"]?.startsWith("text/event-stream")) response.flushHeaders();
  if (!answer.body) {
    response.end();
    return;
  }
  const reader = answer.body.getReader();
  // The client went (or was cut off): the stream is cancelled, and the transport lets go of it.
  const cancel = () => void reader.cancel().catch(() => undefined);
  response.once("close", cancel);
  let stall: NodeJS.Timeout | null = null;
  const unstalled = () => {
    if (stall) clearTimeout(stall);
    stall = null;
  };
  response.on("drain", unstalled);
  response.once("close", unstalled);
  response.once("finish", unstalled);
  let ended = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      ended = done;
      if (done || response.destroyed) break;
      if (response.write(value)) continue;
      if (response.writableLength > limits.backlogBytes) {
        response.destroy();
        break;
      }
      stall ??= setTimeout(() => response.destroy(), limits.stallMs).unref();
    }
  } catch {
    // Cancelled (the client went) or the transport closed the stream: nothing more to write.
  } finally {
    response.off("close", cancel);
    // Cut off, or the client went: the SDK's stream is let go of here (the close may come after this).
    if (!ended) cancel();
    // What was written still has to be taken: the stall timer, if one runs, still cuts off a client that does not.
    response.end();
    if (!response.destroyed && response.writableLength > 0) stall ??= setTimeout(() => response.destroy(), limits.stallMs).unref();
  }
}
