import { describe, expect, it } from "vitest";
import { WatcherHub } from "../../src/core/streams/watchers.js";
import { notifications } from "../../src/protocol/notifications.js";
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
    sendSerialized: (text: string | Buffer) => texts.push(typeof text === "string" ? text : text.toString("utf8")),
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
    // Two encodings among three watchers: the utf8 JSON string is escaped from the bytes (no string made of them),
    // the base64 one made once for its watcher.
    expect(escapes).toBe(1);
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

  it("a notification made as bytes is byte for byte the JSON of the notification object: every byte value, invalid UTF-8, both encodings", () => {
    const hub = new WatcherHub(1 << 20);
    const watchers = (["utf8", "base64"] as const).map((encoding) => {
      const w = recorder(encoding);
      const sub = hub.add(w.connection, "r", 'sh://turn_1/"q"_1', encoding, [{ entryId: 3, channel: 2, after: 0 }]);
      hub.finishReplay(sub, 3, null);
      return { ...w, sub, encoding };
    });
    const chunks = [
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      Buffer.from(Array.from({ length: 128 }, (_, i) => i)),
      Buffer.from("plain line, no escapes"),
      Buffer.alloc(0),
      Buffer.from('"\\\n\r\t\b\f\u0000\u001f\u007f \u2028 é ✓ 😀'),
      Buffer.from([0x61, 0xc3, 0x0a, 0xe2, 0x82]),
      Buffer.from("x".repeat(70_000)),
    ];
    for (const [i, data] of chunks.entries()) hub.publish(3, i + 1, data);
    for (const w of watchers) {
      expect(w.texts).toEqual(
        chunks.map((data, i) =>
          JSON.stringify({
            jsonrpc: "2.0",
            method: "stream/data",
            params: {
              subscription: w.sub.id,
              run: "r",
              path: 'sh://turn_1/"q"_1',
              channel: 2,
              seq: i + 1,
              chunk: data.toString(w.encoding),
              encoding: w.encoding,
            },
          }),
        ),
      );
    }
  });

  it("the stream/data written as bytes carries exactly the fields protocol/notifications.ts gives stream/data (a field added there fails here until core/streams/watchers.ts writes it)", () => {
    const hub = new WatcherHub(1 << 20);
    const w = recorder("guard");
    const sub = hub.add(w.connection, "r", "sh://turn_1/x_1", "utf8", [{ entryId: 9, channel: 1, after: 0 }]);
    hub.finishReplay(sub, 9, null);
    hub.publish(9, 1, Buffer.from("one\n"));
    expect(w.texts).toHaveLength(1);
    const message = JSON.parse(w.texts[0]!) as { method: string; params: Record<string, unknown> };
    const schema = notifications["stream/data"].params;
    expect(message.method).toBe("stream/data");
    expect(Object.keys(message.params).sort()).toEqual(Object.keys(schema.shape).sort());
    expect(schema.strict().parse(message.params)).toEqual(message.params);
  });
});
