import type { IncomingMessage, ServerResponse } from "node:http";

/*
 * The v2 SDK's HTTP transport speaks web-standard Request and Response; `spool serve` is node:http. These two
 * carry a request across (its body already read and checked by http.ts, passed on parsed) and its answer back,
 * streamed (an SSE answer stays open until it ends or the client goes).
 */

/** A Node request as a web Request without its body; its signal aborts when the client goes. */
export function webRequest(request: IncomingMessage, response: ServerResponse): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  const gone = new AbortController();
  response.once("close", () => gone.abort());
  const url = new URL(request.url ?? "/", `http://${request.headers.host ?? "localhost"}`);
  return new Request(url, { method: request.method ?? "GET", headers, signal: gone.signal });
}

/** Writes a web Response to a Node response, its body as it comes; resolves once it ended or the client went. */
export async function sendResponse(answer: Response, response: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {};
  answer.headers.forEach((value, name) => {
    headers[name] = value;
  });
  response.writeHead(answer.status, headers);
  if (!answer.body) {
    response.end();
    return;
  }
  const reader = answer.body.getReader();
  // The client went: the stream is cancelled, and the transport lets go of it.
  const cancel = () => void reader.cancel().catch(() => undefined);
  response.once("close", cancel);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // A reader that does not keep up holds the stream here, not in the socket's buffer.
      if (!response.write(value)) await drained(response);
    }
  } catch {
    // Cancelled (the client went) or the transport closed the stream: nothing more to write.
  } finally {
    response.off("close", cancel);
    response.end();
  }
}

/** Resolves once the response can take more (drain), or the client went (close). */
function drained(response: ServerResponse): Promise<void> {
  if (response.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.once("drain", done);
    response.once("close", done);
  });
}
