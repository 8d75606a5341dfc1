import type { EventId, EventStore, JSONRPCMessage, StreamId } from "@modelcontextprotocol/server";

/**
 * The SSE events of one MCP session, kept so a client that lost a stream resumes it with Last-Event-ID
 * (Streamable HTTP's resumability). Bounded by count and by bytes (a reply of a few MB, a resource read say, counts
 * its size: at 1,000 events alone a session kept GBs): the oldest events go first, and one larger than the whole
 * bound is not kept (nor does it push the others out); a client that comes back after them gets what is left, or is told its event is too old. What
 * outlives the session (a command and its output) is in Spool's store, not here.
 */
export class SessionEventStore implements EventStore {
  readonly #events = new Map<EventId, { stream: StreamId; message: JSONRPCMessage; bytes: number }>();
  #next = 0;
  #bytes = 0;

  constructor(
    private readonly maxEvents = 1000,
    private readonly maxBytes = 4 * 1024 * 1024,
  ) {}

  /** The bytes of the events kept (their JSON). */
  get bytes(): number {
    return this.#bytes;
  }

  async storeEvent(stream: StreamId, message: JSONRPCMessage): Promise<EventId> {
    this.#next += 1;
    const id = `${stream}_${this.#next}`;
    const bytes = Buffer.byteLength(JSON.stringify(message));
    // Larger than the whole bound: not kept, and nothing else is dropped for it (a resume after it is told it is gone).
    if (bytes > this.maxBytes) return id;
    this.#events.set(id, { stream, message, bytes });
    this.#bytes += bytes;
    while (this.#events.size > this.maxEvents || this.#bytes > this.maxBytes) {
      const [oldest, event] = this.#events.entries().next().value!;
      this.#events.delete(oldest);
      this.#bytes -= event.bytes;
    }
    return id;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.#events.get(eventId)?.stream;
  }

  async replayEventsAfter(lastEventId: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const last = this.#events.get(lastEventId);
    if (!last) throw new Error(`event ${lastEventId} is unknown or too old to replay`);
    let after = false;
    for (const [id, event] of this.#events) {
      if (id === lastEventId) after = true;
      // Priming events (an empty message) mark a stream's start; they carry nothing to replay.
      else if (after && event.stream === last.stream && Object.keys(event.message).length > 0) await send(id, event.message);
    }
    return last.stream;
  }
}
