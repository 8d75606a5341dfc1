/** The small interface the RPC layer runs over: WebSocket, or an in-memory pair in tests. */
export interface Transport {
  /**
   * Sends one text message. `flushed` is called once it has left this
   * process (written to the socket), or with an error when the connection
   * went away first; the server counts what is sent and not yet flushed.
   */
  send(text: string, flushed?: (error?: Error) => void): void;
  /** Sends one text message given as its UTF-8 bytes, without decoding them (WebSocket: framed around the Buffer). Else `send` gets them as a string. */
  sendUtf8?(data: Buffer, flushed?: (error?: Error) => void): void;
  close(code?: number, reason?: string): void;
  /** Drops the connection at once, without a closing handshake (that a peer which does not read would never finish). */
  terminate?(): void;
  /** Stops reading messages (the peer's sends then wait in TCP) until `resume`. */
  pause?(): void;
  resume?(): void;
  onMessage(listener: (text: string) => void): void;
  /**
   * In-process transports only: sends `message` as the value it is, not as
   * JSON text, so a Buffer in it reaches the peer as that Buffer. Messages
   * sent with `send` and `sendValue` arrive in the order they were sent.
   */
  sendValue?(message: object | string, flushed?: (error?: Error) => void): void;
  /** Listens to what the peer sent with `sendValue`. */
  onValue?(listener: (message: object | string) => void): void;
  /** WebSocket only: sends one binary message (a binary frame, src/protocol/binary-frame.ts). */
  sendBinary?(data: Uint8Array, flushed?: (error?: Error) => void): void;
  /**
   * WebSocket only: listens to binary messages that are binary frames (their first byte is the layout
   * version); JSON text that arrives in a binary message still comes through `onMessage`.
   */
  onBinary?(listener: (data: Uint8Array) => void): void;
  onClose(listener: (code: number, reason: string) => void): void;
  /** Bytes queued but not yet written to the peer; drives backpressure for watchers. */
  bufferedAmount(): number;
}

/** Two linked transports: what one sends, the other receives (asynchronously, like a socket). */
export function createMemoryTransportPair(): [Transport, Transport] {
  /** What arrives: JSON text (`send`) or a value as it was sent (`sendValue`). */
  type Arrival = { text: string } | { value: object | string };
  const make = () => {
    const messageListeners: ((text: string) => void)[] = [];
    const valueListeners: ((message: object | string) => void)[] = [];
    const closeListeners: ((code: number, reason: string) => void)[] = [];
    let closed = false;
    return {
      messageListeners,
      valueListeners,
      closeListeners,
      paused: false,
      /** Messages that arrived while paused, delivered on resume. */
      backlog: [] as Arrival[],
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
  const deliver = (to: ReturnType<typeof make>, arrival: Arrival) => {
    if ("text" in arrival) for (const l of to.messageListeners) l(arrival.text);
    else if (to.valueListeners.length > 0) for (const l of to.valueListeners) l(arrival.value);
    // A peer that takes no values cannot answer this one: the pair is closed rather than the message lost unseen.
    else close(1011, "a value was sent to a peer that takes none");
  };
  const close = (code: number, reason: string) => {
    if (a.closed && b.closed) return;
    a.closed = true;
    b.closed = true;
    setImmediate(() => {
      for (const l of a.closeListeners) l(code, reason);
      for (const l of b.closeListeners) l(code, reason);
    });
  };
  const transport = (self: ReturnType<typeof make>, peer: ReturnType<typeof make>): Transport => {
    const post = (arrival: Arrival, flushed?: (error?: Error) => void) => {
      if (self.closed) throw new Error("transport is closed");
      setImmediate(() => {
        if (peer.paused) peer.backlog.push(arrival);
        else if (!peer.closed) deliver(peer, arrival);
        flushed?.();
      });
    };
    const t: Transport = {
      send(text, flushed) {
        post({ text }, flushed);
      },
      sendValue(value, flushed) {
        post({ value }, flushed);
      },
      close(code = 1000, reason = "") {
        if (self.closed) return;
        close(code, reason);
      },
      terminate() {
        t.close(1006, "");
      },
      pause() {
        self.paused = true;
      },
      resume() {
        self.paused = false;
        while (!self.paused && !self.closed && self.backlog.length) deliver(self, self.backlog.shift()!);
      },
      onMessage(listener) {
        self.messageListeners.push(listener);
      },
      onValue(listener) {
        self.valueListeners.push(listener);
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
