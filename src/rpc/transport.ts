/** The small interface the RPC layer runs over: WebSocket, or an in-memory pair in tests. */
export interface Transport {
  send(text: string): void;
  close(code?: number, reason?: string): void;
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
  const transport = (self: ReturnType<typeof make>, peer: ReturnType<typeof make>): Transport => ({
    send(text) {
      if (self.closed) throw new Error("transport is closed");
      setImmediate(() => {
        if (!peer.closed) for (const l of peer.messageListeners) l(text);
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
    onMessage(listener) {
      self.messageListeners.push(listener);
    },
    onClose(listener) {
      self.closeListeners.push(listener);
    },
    bufferedAmount: () => 0,
  });
  return [transport(a, b), transport(b, a)];
}
