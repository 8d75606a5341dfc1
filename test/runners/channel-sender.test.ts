// biome-ignore-all lint/suspicious/noExplicitAny: a fake server's untyped params
import { describe, expect, it } from "vitest";
import { SpoolRpcError } from "../../src/client/spool-client.js";
import { ChannelSender, Slots } from "../../src/runners/client/channel-sender.js";
import { senderLink } from "../helpers/sender-link.js";

/** A channel on a server that stores chunks in seq order, as the store does; the test answers the first calls itself. */
function fakeServer() {
  const stored: string[] = [];
  const held = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void; chunk: string }>();
  let holding = true;
  const sent = new Set<number>();
  const store = (seq: number, chunk: string) => {
    if (seq <= stored.length) return { seq, duplicate: true };
    if (seq !== stored.length + 1) throw new SpoolRpcError("gap", -32011, { code: "SEQ_GAP", expected: stored.length + 1 });
    stored.push(chunk);
    return { seq, duplicate: false };
  };
  const slots = new Slots(16);
  const link = senderLink(slots, () => ({
    request: (_method: string, p: any) =>
      // Only a seq's first call waits for the test: a retry (its timer may fire between the test's steps) is answered as the store would.
      holding && !sent.has(p.seq)
        ? new Promise((resolve, reject) => {
            sent.add(p.seq);
            held.set(p.seq, { resolve, reject, chunk: p.chunk });
          })
        : Promise.resolve().then(() => store(p.seq, p.chunk)),
  }));
  const settle = async (seq: number, how: "store" | "internal") => {
    const call = held.get(seq)!;
    held.delete(seq);
    if (how === "internal") call.reject(new SpoolRpcError("Internal error", -32603, { code: "INTERNAL_ERROR" }));
    else {
      try {
        call.resolve(store(seq, call.chunk));
      } catch (error) {
        call.reject(error);
      }
    }
    // Let the sender take the answer in.
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { stored, held, link, settle, answerAll: () => (holding = false) };
}

describe("a runner's channel sender", () => {
  it("a chunk refused as retriable, answered before an earlier chunk's acknowledgement, is sent again with the ones behind it: nothing is given up", async () => {
    const server = fakeServer();
    const refused: SpoolRpcError[] = [];
    const sender = new ChannelSender(
      server.link as never,
      { run: "r", path: "p", channel: 1 },
      { window: 4, maxChunkBytes: 2, highWaterBytes: 1024, onRefused: (e) => refused.push(e), retryDelay: () => 1 },
    );
    await sender.push(Buffer.from("aabbcc"));
    const ended = sender.end();
    await new Promise((resolve) => setImmediate(resolve));
    expect([...server.held.keys()]).toEqual([1, 2, 3]);
    // Chunk 2 fails at once (an internal error), while chunk 1 still waits for its commit; chunk 3 then meets the gap.
    await server.settle(2, "internal");
    await server.settle(1, "store");
    server.answerAll();
    await server.settle(3, "store");
    await ended;
    expect(refused).toEqual([]);
    expect(sender.refused).toBe(false);
    expect(server.stored).toEqual(["aa", "bb", "cc"]);
  });

  it("push answers at once while there is room (no promise per chunk), and with a promise past the high-water mark that resolves once the bytes are sent", async () => {
    const server = fakeServer();
    const sender = new ChannelSender(
      server.link as never,
      { run: "r", path: "p", channel: 1 },
      { window: 1, maxChunkBytes: 4, highWaterBytes: 8, onRefused: () => undefined },
    );
    // The first chunk goes out at once (window 1); the next bytes stay buffered, under the mark.
    expect(sender.push(Buffer.from("aaaa"))).toBeUndefined();
    expect(sender.push(Buffer.from("bbbb"))).toBeUndefined();
    const full = sender.push(Buffer.from("cccc"));
    expect(full).toBeInstanceOf(Promise);
    let room = false;
    void full!.then(() => (room = true));
    await server.settle(1, "store");
    expect(room).toBe(true);
    server.answerAll();
    await server.settle(2, "store");
    await sender.end();
    expect(server.stored.join("")).toBe("aaaabbbbcccc");
  });
  it("a chunk joined from several reads holds its own bytes alone, not a copy of everything buffered; chunks are whole, in order, and never split a character", async () => {
    // A link that takes bytes (the embedded runner's, a binary-frame WebSocket) and answers when told.
    const sent: { seq: number; chunk: Buffer; answer(): void }[] = [];
    const slots = new Slots(16);
    const link = senderLink(slots, () => ({
      bytes: true,
      request: (_method: string, p: any) => new Promise((resolve) => sent.push({ seq: p.seq, chunk: p.chunk, answer: () => resolve({}) })),
    }));
    const sender = new ChannelSender(
      link as never,
      { run: "r", path: "p", channel: 1 },
      { window: 1, maxChunkBytes: 8192, highWaterBytes: 1 << 20, onRefused: () => undefined },
    );
    // Reads of 4 KiB (one ending inside "é"), pushed while chunk 1 waits for its answer.
    const reads = ["a", "b", "c", "d"].map((c) => Buffer.from(c.repeat(4096)));
    reads.push(
      Buffer.concat([Buffer.from("e".repeat(4095)), Buffer.from("é").subarray(0, 1)]),
      Buffer.concat([Buffer.from("é").subarray(1), Buffer.from("f".repeat(100))]),
    );
    for (const read of reads) sender.push(read);
    const ended = sender.end();
    for (let i = 0; i < 10 && sent.some((s) => s.answer !== undefined); i++) {
      const next = sent.find((s) => s.answer !== undefined)!;
      const answer = next.answer;
      next.answer = undefined as never;
      answer();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await ended;
    expect(sent.map((s) => s.seq)).toEqual([1, 2, 3, 4]);
    expect(sent.map((s) => s.chunk.length)).toEqual([4096, 8192, 8191, 102]);
    // The character cut between two reads went whole with the chunk after it.
    expect(sent[3]!.chunk.toString("utf8").startsWith("éf")).toBe(true);
    expect(Buffer.concat(sent.map((s) => s.chunk)).equals(Buffer.concat(reads))).toBe(true);
    // Chunk 2 was cut from four reads buffered (16 KiB): its memory is its 8 KiB, not a view of a 16 KiB copy.
    expect(sent[1]!.chunk.buffer.byteLength).toBe(8192);
  });
});
