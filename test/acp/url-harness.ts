import { createHttpStream } from "@agentclientprotocol/sdk/experimental/http-client";
import { createWebSocketStream } from "@agentclientprotocol/sdk/experimental/ws-client";
import { WebSocket } from "ws";
import { type AcpEditor, editorOn } from "./harness.js";

/** Which of /acp's transports a client uses. */
export type UrlTransport = "http" | "ws";

/**
 * An editor reaching `spool serve` by URL through the ACP SDK's own clients (`experimental/http-client`,
 * `experimental/ws-client`), presenting `token` as a bearer credential.
 */
export function editorByUrl(port: number, transport: UrlTransport, token: string, headers: Record<string, string> = {}): AcpEditor {
  const all = { Authorization: `Bearer ${token}`, ...headers };
  const stream =
    transport === "http"
      ? createHttpStream(`http://127.0.0.1:${port}/acp`, { headers: all })
      : createWebSocketStream(`ws://127.0.0.1:${port}/acp`, { headers: all, WebSocket: WebSocket as never });
  return editorOn(stream as never, () => `over ${transport}`);
}

/** Resolves once `signal` is aborted. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
}
