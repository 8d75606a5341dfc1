import WebSocket from "ws";
import { isLoopback, SUBPROTOCOL, SUBPROTOCOL_TOKEN_PREFIX } from "../auth.js";
import type { Transport } from "../rpc/transport.js";
import { type ProvenConnection, provenConnection, ServerProofError } from "./server-proof.js";
import { foreignSocket, foreignSocketMessage } from "./socket-owner.js";

export interface WebSocketOptions {
  token: string;
  /** Sent as the Origin header (browsers always send one; tests use it to check the Origin rule). */
  origin?: string;
  /**
   * Send the token as the subprotocol `spool.bearer.<token>` (with `spool`) instead of the Authorization
   * header, as a browser must. The token is never sent in the URL: the server refuses that.
   */
  tokenInSubprotocol?: boolean;
  maxPayload?: number;
  /**
   * The server's own /mcp or /acp endpoint opening a connection for a session (`Spool-Door`, a value only that server
   * knows): the server records the connection's transport as mcp or acp. Nobody else has a use for it.
   */
  door?: string | undefined;
}

export class ConnectError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    /** The server did not prove it holds the token (a TCP URL): nothing was sent to it. */
    readonly unproven = false,
  ) {
    super(message);
  }
}

/** A Unix socket URL: `ws+unix:///path/to/spool.sock:/` (the path, then `:` and the request path). */
export function unixSocketUrl(path: string): string {
  return `ws+unix://${path}:/`;
}

/**
 * Opens a WebSocket to a Spool server and resolves once it is open (rejects on 401/403/…). Over TLS (`wss:`, the
 * certificate checked) the token goes with the upgrade; over plain TCP (`ws:`) the server first proves, on the same
 * connection, that it holds the token's verifier (src/client/server-proof.ts), and a server that does not gets
 * nothing; over the home's Unix socket (`ws+unix:`) both prove: the token itself is never sent there.
 */
export async function connectWebSocket(url: string, options: WebSocketOptions): Promise<Transport> {
  const target = new URL(url);
  const unix = target.protocol === "ws+unix:";
  if (unix) {
    // The socket is its own user's before the token goes to it (the path is the URL's, up to the ":" before the request path).
    const why = foreignSocket(decodeURIComponent(target.pathname).replace(/:\/?[^:]*$/, ""));
    if (why) throw new ConnectError(foreignSocketMessage(why), undefined, true);
  }
  let proven: ProvenConnection | null = null;
  // Over a Unix socket (unless a browser is emulated, whose token goes as a subprotocol) and over plain TCP the server
  // proves itself first; over the socket the client then proves it holds the token instead of sending it.
  const socketPath = unix ? decodeURIComponent(target.pathname).replace(/:\/?[^:]*$/, "") : null;
  if (target.protocol === "ws:" || (socketPath !== null && !options.tokenInSubprotocol)) {
    const host = target.hostname.replace(/^\[|\]$/g, "");
    try {
      proven = await provenConnection(socketPath !== null ? { path: socketPath } : { host, port: Number(target.port || 80) }, options.token);
    } catch (error) {
      if (error instanceof ServerProofError) throw new ConnectError(error.message, error.status, error.status === undefined);
      throw new ConnectError(`Cannot connect to ${url}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const protocols = options.tokenInSubprotocol ? [SUBPROTOCOL, `${SUBPROTOCOL_TOKEN_PREFIX}${options.token}`] : [];
  const socket = new WebSocket(target, protocols, {
    headers: {
      ...(options.tokenInSubprotocol ? {} : { Authorization: proven?.authorization ?? `Bearer ${options.token}` }),
      ...(options.door ? { "Spool-Door": options.door } : {}),
    },
    ...(options.origin ? { origin: options.origin } : {}),
    maxPayload: options.maxPayload ?? 256 * 1024 * 1024,
    // Frame masking protects HTTP intermediaries from script-controlled bytes; a loopback
    // connection has none, so it sends a zero mask, which both ends of ws skip (no XOR pass over
    // every byte of every chunk).
    ...(unix || isLoopback(target.hostname.replace(/^\[|\]$/g, "")) ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
    // The upgrade goes on the connection the server proved itself on.
    ...(proven
      ? {
          createConnection: () => {
            proven.socket.resume();
            return proven.socket;
          },
        }
      : {}),
  });
  return new Promise((resolve, reject) => {
    socket.once("unexpected-response", (_req, res) => {
      reject(new ConnectError(`Server refused the connection: HTTP ${res.statusCode}`, res.statusCode));
      socket.terminate();
    });
    socket.once("error", (error) => reject(new ConnectError(`Cannot connect to ${url}: ${error.message}`)));
    socket.once("open", () => {
      socket.on("error", () => {
        // Errors after open surface as a close; the client reports that.
      });
      resolve({
        send: (text) => socket.send(text),
        // A Uint8Array goes as one binary message (a binary frame, src/protocol/binary-frame.ts).
        sendBinary: (data) => socket.send(data),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (listener) => socket.on("message", (data) => listener(data.toString())),
        onClose: (listener) => socket.on("close", (code, reason) => listener(code, reason.toString())),
        bufferedAmount: () => socket.bufferedAmount,
      });
    });
  });
}
