import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { SessionEventStore } from "../../src/mcp/sessions/event-store.js";

const note = (n: number): JSONRPCMessage => ({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: n } });

async function replay(store: SessionEventStore, after: string): Promise<{ stream: string; sent: [string, JSONRPCMessage][] }> {
  const sent: [string, JSONRPCMessage][] = [];
  const stream = await store.replayEventsAfter(after, { send: async (id, message) => void sent.push([id, message]) });
  return { stream, sent };
}

describe("SessionEventStore (a /mcp session's SSE events, for Last-Event-ID)", () => {
  it("replays the events of the same stream after the given one, in order, without priming events", async () => {
    const store = new SessionEventStore();
    const prime = await store.storeEvent("a", {} as JSONRPCMessage);
    const a1 = await store.storeEvent("a", note(1));
    await store.storeEvent("b", note(100));
    const a2 = await store.storeEvent("a", note(2));
    const a3 = await store.storeEvent("a", note(3));
    expect(await replay(store, prime)).toEqual({
      stream: "a",
      sent: [
        [a1, note(1)],
        [a2, note(2)],
        [a3, note(3)],
      ],
    });
    expect(await replay(store, a2)).toEqual({ stream: "a", sent: [[a3, note(3)]] });
    expect(await store.getStreamIdForEventId(a1)).toBe("a");
  });

  it("keeps the newest events only; an unknown or dropped id is an error, not an empty replay", async () => {
    const store = new SessionEventStore(3);
    const first = await store.storeEvent("a", note(1));
    const ids = [await store.storeEvent("a", note(2)), await store.storeEvent("a", note(3)), await store.storeEvent("a", note(4))];
    await expect(replay(store, first)).rejects.toThrow(/unknown or too old/);
    await expect(replay(store, "nothing_1")).rejects.toThrow(/unknown or too old/);
    expect((await replay(store, ids[0]!)).sent.map(([id]) => id)).toEqual(ids.slice(1));
    expect(await store.getStreamIdForEventId(first)).toBeUndefined();
  });

  it("keeps at most its bytes: large events push the oldest out, one larger than the bound is not kept", async () => {
    const big = (n: number): JSONRPCMessage => ({ jsonrpc: "2.0", id: n, result: { text: "x".repeat(400) } });
    const store = new SessionEventStore(1000, 2000);
    const ids: string[] = [];
    for (let n = 0; n < 10; n++) ids.push(await store.storeEvent("a", big(n)));
    expect(store.bytes).toBeLessThanOrEqual(2000);
    await expect(replay(store, ids[0]!)).rejects.toThrow(/unknown or too old/);
    const kept = ids.filter((_, i) => i >= ids.length - 4);
    expect((await replay(store, kept[0]!)).sent.map(([id]) => id)).toEqual(kept.slice(1));
    const before = store.bytes;
    const huge = await store.storeEvent("a", { jsonrpc: "2.0", id: 99, result: { text: "y".repeat(5000) } });
    expect(await store.getStreamIdForEventId(huge)).toBeUndefined();
    // Nothing else was dropped for it.
    expect(store.bytes).toBe(before);
    expect((await replay(store, kept[0]!)).sent.map(([id]) => id)).toEqual(kept.slice(1));
  });
});
