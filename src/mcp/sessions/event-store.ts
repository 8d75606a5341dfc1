import type { EventId, EventStore, JSONRPCMessage, StreamId } from "@modelcontextprotocol/server";

/**
 * The SSE events of one MCP session, kept so a client that lost a stream resumes it with Last-Event-ID
 * (Streamable HTTP's resumability). Bounded: the oldest events go first; a client that comes back after them
 * gets what is left. What outlives the session (a command and its output) is in Spool's store, not here.
 */
export class SessionEventStore implements EventStore {
  readonly #events = new Map<EventId, { stream: StreamId; message: JSONRPCMessage }>();
  #next = 0;

  constructor(private readonly maxEvents = 1000) {}

  async storeEvent(stream: StreamId, message: JSONRPCMessage): Promise<EventId> {
    this.#next += 1;
    const id = `${stream}_${this.#next}`;
    this.#events.set(id, { stream, message });
    if (this.#events.size > this.maxEvents) this.#events.delete(this.#events.keys().next().value!);
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
