import type { Transport } from "../rpc/transport.js";

/**
 * The client's transport over a browser's WebSocket, for the web page: `new SpoolClient(await
 * connectBrowserWebSocket(url))`. The page's browser sends its session cookie with the upgrade and the page
 * passes its session's key (`["spool", "spool.session.<key>"]`); another browser client, which cannot set
 * headers, passes its token (`["spool", "spool.bearer.<token>"]`).
 * No Node imports: the page bundles it.
 */
export function connectBrowserWebSocket(url: string, protocols?: string[], timeoutMs = CONNECT_TIMEOUT_MS): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols);
    const failed = () => {
      clearTimeout(timer);
      reject(new Error(`could not connect to ${url}`));
    };
    // A handshake the server never answers (a proxy holding it, a server stopped mid-way) is given up, not waited on for ever.
    const timer = setTimeout(() => {
      socket.removeEventListener("error", failed);
      socket.close();
      reject(new Error(`no answer from ${url} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.addEventListener("error", failed, { once: true });
    socket.addEventListener(
      "open",
      () => {
        clearTimeout(timer);
        socket.removeEventListener("error", failed);
        resolve(browserTransport(socket));
      },
      { once: true },
    );
  });
}

/** How long a browser's WebSocket handshake may take before it is given up. */
export const CONNECT_TIMEOUT_MS = 15_000;

/** An open browser WebSocket as a Transport. */
export function browserTransport(socket: WebSocket): Transport {
  return {
    send(text, flushed) {
      if (socket.readyState !== WebSocket.OPEN) {
        const error = new Error("the connection is closed");
        if (!flushed) throw error;
        return flushed(error);
      }
      socket.send(text);
      // A browser does not say when a message has left it: handed to the socket is as far as the page can know.
      flushed?.();
    },
    close(code = 1000, reason = "") {
      socket.close(code, reason);
    },
    onMessage(listener) {
      socket.addEventListener("message", (event) => listener(String(event.data)));
    },
    onClose(listener) {
      socket.addEventListener("close", (event) => listener(event.code, event.reason));
    },
    bufferedAmount: () => socket.bufferedAmount,
  };
}
