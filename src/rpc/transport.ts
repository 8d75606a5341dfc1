/** The small interface the RPC layer runs over: WebSocket, or an in-memory pair in tests. */
export interface Transport {
  /**
   * Sends one text message. `flushed` is called once it has left this
   * process (written to the socket), or with an error when the connection
   * went away first; the server counts what is sent and not yet flushed.
   */
  send(text: string, flushed?: (error?: Error) => void): void;
  close(code?: number, reason?: string): void;
  /** Drops the connection at once, without a closing handshake (that a peer which does not read would never finish). */
  terminate?(): void;
  /** Stops reading messages (the peer's sends then wait in TCP) until `resume`. */
  pause?(): void;
  resume?(): void;
  onMessage(listener: (text: string) => void): void;
  onClose(listener: (code: number, reason: string) => void): void;
  /** Bytes queued but not yet written to the peer; drives backpressure for watchers. */
  bufferedAmount(): number;
}

/** Two linked transports: what one sends, the other receives (asynchronously, like a socket). */
export function createMemoryTransportPair(): [Transport, Transport] {
  const make = () => {
    const messageListeners: ((text: string) => void)[] = [];
    const closeListeners: ((code: number, reason: string) => void)[] = [];
    let closed = false;
    return {
      messageListeners,
      closeListeners,
      paused: false,
      /** Messages that arrived while paused, delivered on resume. */
      backlog: [] as string[],
      get closed() {
        return closed;
      },
      set closed(v: boolean) {
        closed = v;
      },
    };
  };
  const a = make();
  const b = make();
  const transport = (self: ReturnType<typeof make>, peer: ReturnType<typeof make>): Transport => {
    const t: Transport = {
      send(text, flushed) {
        if (self.closed) throw new Error("transport is closed");
        setImmediate(() => {
          if (peer.paused) peer.backlog.push(text);
          else if (!peer.closed) for (const l of peer.messageListeners) l(text);
          flushed?.();
        });
      },
      close(code = 1000, reason = "") {
        if (self.closed) return;
        self.closed = true;
        peer.closed = true;
        setImmediate(() => {
          for (const l of self.closeListeners) l(code, reason);
          for (const l of peer.closeListeners) l(code, reason);
        });
      },
      terminate() {
        t.close(1006, "");
      },
      pause() {
        self.paused = true;
      },
      resume() {
        self.paused = false;
        while (!self.paused && !self.closed && self.backlog.length) {
          const text = self.backlog.shift()!;
          for (const l of self.messageListeners) l(text);
        }
      },
      onMessage(listener) {
        self.messageListeners.push(listener);
      },
      onClose(listener) {
        self.closeListeners.push(listener);
      },
      bufferedAmount: () => 0,
    };
    return t;
  };
  return [transport(a, b), transport(b, a)];
}
