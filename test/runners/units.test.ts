// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ChannelSender, incompleteUtf8Tail, Slots } from "../../src/runners/client/channel-sender.js";
import { knownHostKeys } from "../../src/runners/ssh/ssh.js";
import { DockerDemuxer, PidLine, wrapperScript } from "../../src/runners/streams.js";
import { senderLink } from "../helpers/sender-link.js";

/** One frame of Docker's multiplexed stream: type (1 stdout, 2 stderr), three zero bytes, the length, the payload. */
function dockerFrame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe("runner building blocks", () => {
  it("finds an incomplete UTF-8 character at the end of a buffer", () => {
    const check = Buffer.from("✓", "utf8"); // e2 9c 93
    expect(incompleteUtf8Tail(Buffer.from("abc"))).toBe(0);
    expect(incompleteUtf8Tail(check)).toBe(0);
    expect(incompleteUtf8Tail(check.subarray(0, 1))).toBe(1);
    expect(incompleteUtf8Tail(check.subarray(0, 2))).toBe(2);
    expect(incompleteUtf8Tail(Buffer.concat([Buffer.from("x"), Buffer.from("é").subarray(0, 1)]))).toBe(1);
  });

  it("a channel sender never splits a character, numbers chunks from 1, and sends binary as base64", async () => {
    const sent: { seq: number; chunk: string; encoding?: string }[] = [];
    const slots = new Slots(2);
    const link = senderLink(slots, () => ({ request: async (_m: string, p: any) => void sent.push(p) }));
    const sender = new ChannelSender(
      link as never,
      { run: "r", path: "p", channel: 1 },
      { window: 4, maxChunkBytes: 4, highWaterBytes: 1024, onRefused: () => {} },
    );
    await sender.push(Buffer.from("ab✓")); // 5 bytes; the cut at 4 would split ✓
    await sender.push(Buffer.from([0xff, 0x00]));
    await sender.end();
    expect(sent.map((s) => s.seq)).toEqual([1, 2, 3]);
    expect(sent[0]).toMatchObject({ chunk: "ab" });
    expect(sent[0]!.encoding).toBeUndefined();
    expect(Buffer.concat(sent.map((s) => Buffer.from(s.chunk, (s.encoding as BufferEncoding) ?? "utf8")))).toEqual(
      Buffer.concat([Buffer.from("ab✓"), Buffer.from([0xff, 0x00])]),
    );
    expect(sent.some((s) => s.encoding === "base64")).toBe(true);
  });

  it("known_hosts: plain and hashed entries, non-default ports, revoked keys", () => {
    const salt = Buffer.from("0123456789abcdefghij");
    const hashed = createHmac("sha1", salt).update("[10.0.0.5]:2222").digest("base64");
    const text = [
      "# comment",
      "example.org,192.0.2.1 ssh-ed25519 AAAAplain",
      `|1|${salt.toString("base64")}|${hashed} ssh-ed25519 AAAAhashed`,
      "[example.org]:2200 ssh-rsa AAAAport",
      "@revoked example.org ssh-ed25519 AAAAbad",
      "@cert-authority *.example.org ssh-ed25519 AAAAca",
    ].join("\n");
    expect([...knownHostKeys(text, "example.org", 22).accepted]).toEqual(["AAAAplain"]);
    expect([...knownHostKeys(text, "example.org", 22).revoked]).toEqual(["AAAAbad"]);
    expect([...knownHostKeys(text, "10.0.0.5", 2222).accepted]).toEqual(["AAAAhashed"]);
    expect([...knownHostKeys(text, "example.org", 2200).accepted]).toEqual(["AAAAport"]);
    expect(knownHostKeys(text, "other.org", 22).accepted.size).toBe(0);
  });

  it("Docker's multiplexed stream splits into stdout and stderr across frame boundaries", async () => {
    const frame = (type: number, text: string) => dockerFrame(type, Buffer.from(text));
    const all = Buffer.concat([frame(1, "out-1\n"), frame(2, "err-1\n"), frame(1, "out-2\n")]);
    const demux = new DockerDemuxer();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    demux.stdout.on("data", (d) => out.push(d));
    demux.stderr.on("data", (d) => err.push(d));
    for (let i = 0; i < all.length; i += 5) demux.write(all.subarray(i, i + 5)); // frames cut anywhere
    demux.end();
    await new Promise((r) => demux.stdout.on("end", r));
    expect(Buffer.concat(out).toString()).toBe("out-1\nout-2\n");
    expect(Buffer.concat(err).toString()).toBe("err-1\n");
  });

  it("Docker's demuxer takes no more frames while an output's reader is behind, and all of them once it reads", async () => {
    const demux = new DockerDemuxer();
    // 100 KiB of stdout in 4 writes, and nobody reading: the outputs hold 64 KiB.
    const payloads = Array.from({ length: 4 }, (_, i) => Buffer.alloc(25 * 1024, 97 + i));
    const taken: number[] = [];
    for (const [i, payload] of payloads.entries()) demux.write(dockerFrame(1, payload), () => taken.push(i));
    demux.end();
    // The write that filled stdout waits for its reader; the ones after it are not taken meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(taken).toEqual([0, 1]);
    expect(demux.stdout.readableLength).toBe(75 * 1024);
    const out: Buffer[] = [];
    demux.stdout.on("data", (d) => out.push(d));
    await new Promise((r) => demux.stdout.on("end", r));
    expect(taken).toEqual([0, 1, 2, 3]);
    expect(Buffer.concat(out).equals(Buffer.concat(payloads))).toBe(true);
  });

  it("Docker's demuxer goes on taking frames once a consumer destroyed the output it was waiting on (the other output still gets its own)", async () => {
    const demux = new DockerDemuxer();
    const taken: number[] = [];
    // stdout full (nobody reads it), then frames for both outputs.
    demux.write(dockerFrame(1, Buffer.alloc(80 * 1024, 97)), () => taken.push(0));
    demux.write(dockerFrame(1, Buffer.alloc(1024, 98)), () => taken.push(1));
    demux.write(dockerFrame(2, Buffer.from("err\n")), () => taken.push(2));
    demux.end();
    await new Promise((resolve) => setImmediate(resolve));
    expect(taken).toEqual([]);
    const err: Buffer[] = [];
    demux.stderr.on("data", (d) => err.push(d));
    const ended = new Promise((r) => demux.stderr.on("end", r));
    // Before, the write waited for a read that never came: nothing after it was taken, stderr never ended.
    demux.stdout.destroy();
    await ended;
    expect(taken).toEqual([0, 1, 2]);
    expect(Buffer.concat(err).toString()).toBe("err\n");
  });

  it("the remote wrapper reports its pid first and quotes everything else", async () => {
    expect(wrapperScript("echo 'hi'", "/tmp/a b", { A: "x'y" })).toBe(
      `echo $$ && cd -- '/tmp/a b' && export A='x'\\''y' && exec /bin/sh -c 'echo '\\''hi'\\'''`,
    );
    const line = new PidLine();
    const rest: Buffer[] = [];
    line.on("data", (d) => rest.push(d));
    line.write("12");
    line.write("34\nhello");
    line.end();
    expect(await line.pid).toBe(1234);
    await new Promise((r) => line.on("end", r));
    expect(Buffer.concat(rest).toString()).toBe("hello");
  });
});
