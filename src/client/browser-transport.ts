import type { Transport } from "../rpc/transport.js";

/**
 * The client's transport over a browser's WebSocket, for the web page: `new SpoolClient(await
 * connectBrowserWebSocket(url))`. The page's browser sends its session cookie with the upgrade and the page
 * passes its session's key (`["spool", "spool.session.<key>"]`); another browser client, which cannot set
 * headers, passes its token (`["spool", "spool.bearer.<token>"]`).
 * No Node imports: the page bundles it.
 */
export function connectBrowserWebSocket(url: string, protocols?: string[]): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols);
    const failed = () => reject(new Error(`could not connect to ${url}`));
    socket.addEventListener("error", failed, { once: true });
    socket.addEventListener(
      "open",
      () => {
        socket.removeEventListener("error", failed);
        resolve(browserTransport(socket));
      },
      { once: true },
    );
  });
}

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
