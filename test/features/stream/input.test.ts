// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY } from "../../../src/protocol/status.js";
import { ended, startProducer } from "../../helpers/live-output.js";
import { eventually, startTestServer, type TestServer } from "../../helpers/server.js";

describe("stream/input, stream/eof, stream/signal on the embedded local runner", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ limits: { maxInputBytes: 1024, maxQueuedInputBytes: 4096 } });
  });
  afterAll(() => ts.stop());

  it("a question read from stdin is answered over stream/input, and channel 0 records what was typed", async () => {
    const c = await ts.clientIn("wire");
    const p = await startProducer(c, "read", "read x; echo got:$x");
    const sent = await c.input("read", p.path, "hello\n");
    expect(sent).toMatchObject({ path: "sh://turn_1/read-x-echo-got-x_0", seq: 1, bytes: 6, duplicate: false });
    const { log, out } = await ended(c, "read", p.path, p.stdout);
    expect(out.body).toBe("got:hello\n");
    expect(out.status).toBe(ENTRY.done);
    const stdin = await c.call("entry/get", { run: "read", path: sent.path });
    expect(stdin).toMatchObject({ body: "hello\n", status: ENTRY.done, attributes: { channel: 0, name: "stdin", log: p.path } });
    expect(log.body).toMatch(/; stdin 6 bytes\/1 line, stdout 10 bytes\/1 line, stderr 0 bytes\/0 lines$/);
  });

  it("cat copies its input until stream/eof, then ends with exit 0; input after eof is STREAM_CLOSED", async () => {
    const c = await ts.clientIn("wire");
    const p = await startProducer(c, "cat", "cat");
    await c.input("cat", p.path, "one\n");
    await p.output.until("one\n");
    await c.input("cat", p.path, Buffer.from([0xe2, 0x9c, 0x93, 10]));
    expect(await c.eof("cat", p.path)).toEqual({ path: "sh://turn_1/cat_0", changed: true });
    const { out } = await ended(c, "cat", p.path, p.stdout);
    expect(out.body).toBe("one\n✓\n");
    expect(out.attributes.exit_code).toBe(0);
    await expect(c.input("cat", p.path, "late\n")).rejects.toMatchObject({ data: { code: "STREAM_CLOSED" } });
  });

  it("a trap prints on SIGINT sent with stream/signal", async () => {
    const c = await ts.clientIn("wire");
    const p = await startProducer(c, "trap", "trap 'echo trapped; exit 3' INT; echo ready; while :; do sleep 1; done");
    await p.output.until("ready\n");
    expect(await c.signal("trap", p.path, "INT")).toEqual({ path: p.path, signal: "INT" });
    const { out } = await ended(c, "trap", p.path, p.stdout);
    expect(out.body).toBe("ready\ntrapped\n");
    expect(out.attributes.exit_code).toBe(3);
  });

  it("a Python REPL is driven for three lines, each answered before the next is sent", async () => {
    const c = await ts.clientIn("wire");
    const p = await startProducer(c, "repl", "python3 -q -u -i");
    await c.input("repl", p.path, "x = 6\n");
    await c.input("repl", p.path, "print(x * 7)\n");
    await p.output.until("42\n");
    await c.input("repl", p.path, "print('bye', x)\n");
    await p.output.until("bye 6\n");
    await c.eof("repl", p.path);
    const { out } = await ended(c, "repl", p.path, p.stdout);
    expect(out.body).toBe("42\nbye 6\n");
    expect(out.status).toBe(ENTRY.done);
  });

  it("a repeated seq is acknowledged once; another payload under it is CONFLICT, a gap SEQ_GAP", async () => {
    const c = await ts.clientIn("wire");
    const p = await startProducer(c, "seq", "cat");
    expect(await c.input("seq", p.path, "a\n", { seq: 1 })).toMatchObject({ seq: 1, duplicate: false });
    expect(await c.input("seq", p.path, "a\n", { seq: 1 })).toMatchObject({ seq: 1, duplicate: true });
    await expect(c.input("seq", p.path, "b\n", { seq: 1 })).rejects.toMatchObject({ data: { code: "CONFLICT", seq: 1 } });
    await expect(c.input("seq", p.path, "c\n", { seq: 3 })).rejects.toMatchObject({ data: { code: "SEQ_GAP", expected: 2 } });
    await c.input("seq", p.path, "d\n", { seq: 2 });
    await c.eof("seq", p.path);
    expect((await ended(c, "seq", p.path, p.stdout)).out.body).toBe("a\nd\n");
  });

  it("bad input gets a clear error and changes nothing", async () => {
    const c = await ts.clientIn("wire");
    const p = await startProducer(c, "bad", "cat");
    await expect(c.input("bad", p.path, "x".repeat(1025))).rejects.toMatchObject({ data: { code: "PAYLOAD_TOO_LARGE", limit: 1024 } });
    await expect(c.call("stream/input", { run: "bad", path: p.path, data: "%%%", encoding: "base64" })).rejects.toMatchObject({
      data: { code: "INVALID_PARAMS" },
    });
    await expect(c.call("stream/input", { run: "bad", path: p.path, data: "" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await expect(c.request("stream/signal", { run: "bad", path: p.path, signal: "SEGV" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await expect(c.call("stream/resize", { run: "bad", path: p.path, cols: 0, rows: 10 })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await expect(c.resize("bad", p.path, { cols: 100, rows: 30 })).rejects.toMatchObject({ data: { code: "UNSUPPORTED" } });
    await expect(c.input("bad", "log://turn_1/sh/nothing", "x")).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    // Nothing of it reached the command or the record: no input channel was opened.
    const { entries } = await c.call("entry/list", { run: "bad", pattern: "sh://*_0" });
    expect(entries).toEqual([]);
    await c.eof("bad", p.path);
    expect((await ended(c, "bad", p.path, p.stdout)).out.body).toBe("");
  });

  it("input to a pending proposal is CONFLICT, to a finished producer STREAM_CLOSED", async () => {
    const c = await ts.clientIn("wire");
    await c.call("run/create", { alias: "states" });
    const { path } = await c.call("proposal/create", { run: "states", tool: "sh", command: "true" });
    await expect(c.input("states", path, "x")).rejects.toMatchObject({ data: { code: "CONFLICT", status: ENTRY.proposed } });
    const resolved = await c.call("run/resolve", { run: "states", path, decision: "accept" });
    await ended(c, "states", path, resolved.channels[0]!.path);
    for (const call of [() => c.input("states", path, "x"), () => c.eof("states", path), () => c.signal("states", path, "TERM")]) {
      await expect(call()).rejects.toMatchObject({ data: { code: "STREAM_CLOSED", status: ENTRY.done } });
    }
  });

  it("a connection of another project gets NOT_FOUND and cannot reach the producer", async () => {
    const c = await ts.clientIn("wire");
    const stranger = await ts.clientIn("elsewhere");
    await stranger.call("run/create", { alias: "private" }).catch(() => undefined);
    const p = await startProducer(c, "private", "cat");
    await expect(stranger.input("private", p.path, "x\n")).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(stranger.signal("private", p.path, "KILL")).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await c.eof("private", p.path);
    const { out } = await ended(c, "private", p.path, p.stdout);
    expect(out).toMatchObject({ body: "", status: ENTRY.done });
  });

  it("another client of the project watches what is typed on channel 0", async () => {
    const c = await ts.clientIn("wire");
    const watcher = await ts.clientIn("wire");
    const p = await startProducer(c, "watched", "cat");
    const first = await c.input("watched", p.path, "seen\n");
    const typed: string[] = [];
    const watch = await watcher.watch({ run: "watched", path: p.path, channel: 0 }, (chunk) => typed.push(chunk.data.toString()));
    await c.input("watched", p.path, "live\n");
    await c.eof("watched", p.path);
    expect(await watch.ended).toEqual(new Map([[0, { status: ENTRY.done, exit_code: 0 }]]));
    expect(typed).toEqual(["seen\n", "live\n"]);
    expect(first.path).toBe("sh://turn_1/cat_0");
  });

  it("a producer streamed by its accepting client ('self') gets producer/input; one that does not handle it answers UNSUPPORTED", async () => {
    const owner = await ts.clientIn("wire");
    const other = await ts.clientIn("wire");
    const path = await acceptedBySelf(owner, "self", "my repl");
    await expect(other.input("self", path, "1+1\n")).rejects.toMatchObject({ data: { code: "UNSUPPORTED" } });
    const got: any[] = [];
    owner.handle("producer/input", (p: any) => {
      got.push({ ...p, data: Buffer.from(p.data, "base64").toString() });
      return { applied: true };
    });
    expect(await other.input("self", path, "1+1\n")).toMatchObject({ seq: 1, duplicate: false });
    expect(got).toEqual([{ run: "self", path, data: "1+1\n", seq: 1 }]);
    await expect(other.signal("self", path, "INT")).rejects.toMatchObject({ data: { code: "UNSUPPORTED" } });
    await owner.call("stream/completed", { run: "self", path, exit_code: 0 });
  });

  it("input the owner took just before the producer ended is sent, not STREAM_CLOSED: its channels closed before it could be stored", async () => {
    const owner = await ts.clientIn("wire");
    const other = await ts.clientIn("wire");
    const path = await acceptedBySelf(owner, "last", "read x; echo got:$x");
    // The command reads the line and exits: its owner says so before it answers the relay (as a runner whose
    // command ended at once may, on another server). Before, the caller got STREAM_CLOSED for input that was sent.
    const got: string[] = [];
    owner.handle("producer/input", async (p: any) => {
      got.push(Buffer.from(p.data, "base64").toString());
      await owner.call("stream/completed", { run: "last", path, exit_code: 0 });
      return { applied: true };
    });
    expect(await other.input("last", path, "hello\n")).toMatchObject({ seq: 1, duplicate: false });
    expect(got).toEqual(["hello\n"]);
    // Later input finds it finished.
    await expect(other.input("last", path, "again\n")).rejects.toMatchObject({ data: { code: "STREAM_CLOSED" } });
  });

  it("controls of one producer are bounded: past maxQueuedInputBytes waiting for the owner, LIMIT_EXCEEDED", async () => {
    const owner = await ts.clientIn("wire");
    const path = await acceptedBySelf(owner, "slow", "slow reader");
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const got: unknown[] = [];
    owner.handle("producer/input", async (p: unknown) => {
      got.push(p);
      await gate;
      return { applied: true };
    });
    // One connection's calls to a producer wait for each other; these come from five at once.
    const senders = await Promise.all([0, 1, 2, 3, 4].map(() => ts.clientIn("wire")));
    const sends: Promise<{ seq: number }>[] = [];
    for (const sender of senders.slice(0, 4)) {
      sends.push(sender.input("slow", path, "x".repeat(1000)));
      await eventually(() => got.length > 0 || sends.length > 1, 5_000, "the first input to reach the owner");
    }
    await expect(senders[4]!.input("slow", path, "y".repeat(1000))).rejects.toMatchObject({ data: { code: "LIMIT_EXCEEDED", limit: 4096 } });
    release();
    expect((await Promise.all(sends)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    await owner.call("stream/completed", { run: "slow", path, exit_code: 0 });
  });
});

/** A new run's proposal accepted by `owner` with runner "self": the owner streams it and gets its controls. */
async function acceptedBySelf(owner: Awaited<ReturnType<TestServer["clientIn"]>>, alias: string, command: string): Promise<string> {
  await owner.call("run/create", { alias });
  const { path } = await owner.call("proposal/create", { run: alias, tool: "sh", sandbox: "full", command });
  await owner.call("run/resolve", { run: alias, path, decision: "accept", runner: "self" });
  return path;
}
