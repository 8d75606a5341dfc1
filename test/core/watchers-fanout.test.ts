import { describe, expect, it } from "vitest";
import { WatcherHub } from "../../src/core/watchers.js";
import type { ConnectionHandle } from "../../src/rpc/connection-context.js";

/** A connection that records what it is sent: serialized texts, and notifications as objects. */
function recorder(id: string) {
  const texts: string[] = [];
  const notified: unknown[] = [];
  const connection = {
    id,
    project: null,
    clientInfo: null,
    state: new Map(),
    join: () => undefined,
    notify: (method: string, params: unknown) => notified.push({ jsonrpc: "2.0", method, params }),
    sendSerialized: (text: string) => texts.push(text),
    request: () => Promise.resolve(null),
    bufferedAmount: () => 0,
    onClose: () => undefined,
  } as unknown as ConnectionHandle;
  return { connection, texts, notified };
}

describe("watcher fan-out", () => {
  it("a chunk is escaped into JSON once per encoding and every watcher gets the text JSON.stringify makes of its notification", () => {
    const hub = new WatcherHub(1 << 20);
    const watchers = ["a", "b", "c"].map((id) => ({ ...recorder(id), encoding: id === "c" ? ("base64" as const) : ("utf8" as const) }));
    const subs = watchers.map((w) => hub.add(w.connection, 'r"1', "sh://turn_1/x_1", w.encoding, [{ entryId: 7, channel: 1, after: 0 }]));
    for (const sub of subs) hub.finishReplay(sub, 7, null);
    const data = Buffer.from('line "one"\n\u0001 é\n');
    let escapes = 0;
    const originalToString = data.toString.bind(data);
    data.toString = ((encoding?: BufferEncoding) => {
      escapes++;
      return originalToString(encoding);
    }) as typeof data.toString;
    hub.publish(7, 1, data);
    // Two encodings among three watchers: two encodings made, not three.
    expect(escapes).toBe(2);
    for (const [i, w] of watchers.entries()) {
      expect(w.notified).toEqual([]);
      expect(w.texts).toHaveLength(1);
      const expected = {
        jsonrpc: "2.0",
        method: "stream/data",
        params: {
          subscription: subs[i]!.id,
          run: 'r"1',
          path: "sh://turn_1/x_1",
          channel: 1,
          seq: 1,
          chunk: originalToString(w.encoding),
          encoding: w.encoding,
        },
      };
      // Byte for byte what serialising the notification object gives.
      expect(w.texts[0]).toBe(JSON.stringify(expected));
    }
    // A repeat is not sent again; the next chunk is.
    hub.publish(7, 1, data);
    hub.publish(7, 2, Buffer.from("two\n"));
    expect(watchers.map((w) => w.texts.map((t) => JSON.parse(t).params.seq))).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
  });
});
