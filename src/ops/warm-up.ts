import type { z } from "zod";
import type { Core } from "../core/index.js";
import { ENTRY } from "../core/status.js";
import { type EntryRow, memoryLineReads } from "../core/views.js";
import { methods } from "../protocol/methods/index.js";
import { ServerConnection } from "../rpc/connection.js";
import { ReadCap } from "../rpc/read-cap.js";
import { OutgoingReply, ReplyParts } from "../rpc/reply-bytes.js";

/** The method the warm-up runs: entry/get's handler (features/entries/get.ts), given by the server that wires both. */
export interface WarmedMethod {
  handler(
    params: z.output<(typeof methods)["entry/get"]["params"]>,
    /** A stand-in of the handler's context: the parts entry/get reads (project, connection, core's reads, reply). */
    ctx: never,
  ): unknown;
}

/** Warm-ups begun and those that ended with every reply as expected, since the process started (a test waits on it). */
export const warmUps = { started: 0, done: 0 };

/**
 * Runs, on made-up values, what the first tail or slice after a start would otherwise run for the first time: V8
 * compiles a function on its first call and zod compiles a schema's parser on its first parse (together ~3 ms of
 * server CPU on the first read after an ingest, against ~0.2-0.5 for the next ones; bench/history/README.md "Issue 24,
 * the first read after a start" and "… what the first reads after a burst spend their CPU on"). Its calls go in as
 * text messages through a ServerConnection over a transport that carries nothing (its receive and reply paths, the
 * flush marks the read cap waits for), to a host that parses entry/get's params, runs this handler on a stand-in
 * context and parses its result: a made-up channel of eight chunks in a private in-memory SQLite database, read by
 * the store's own line reads (the search for a line's chunk, the walk of the chunks after it, the cutter), and a
 * read cap of its own; a tail and slices at the channel's start, middle and across two chunks, each a few times
 * (WARM_ROUNDS). Then it makes the store's own line read on an entry id that no entry has (ids start at 1). The
 * server runs it once it listens (entries plugin); the store's read statements are prepared when its repositories
 * are made (the server calls it once it listens, server/server.ts). True when every reply held the lines expected and the read cap holds nothing afterwards (a test holds
 * it to that, so the warm-up takes the paths real reads take).
 */
export async function warmEntryGet(entryGet: WarmedMethod, store?: Pick<Core["entries"], "readLines">): Promise<boolean> {
  warmUps.started++;
  const { params, result } = methods["entry/get"];
  const data = Buffer.from("warm 1\nwarm 2\nwarm 3\n");
  // A channel of 8 chunks of 3 lines in a private in-memory database, read by the store's own line reads.
  const chunks = Array.from({ length: 8 }, () => ({ newlines: 3, data }));
  const memory = memoryLineReads(chunks);
  const row: EntryRow = {
    id: 1,
    run_id: 0,
    path: "sh://turn_1/warm_1",
    scheme: "sh",
    turn: 1,
    status: ENTRY.done,
    attributes: JSON.stringify({ channel: 1, name: "stdout", log: "log://turn_1/warm" }),
    body: "",
    streamed: 1,
    producer_id: 0,
    channel: 1,
    bytes: data.length * chunks.length,
    newlines: 3 * chunks.length,
    ends_with_newline: 1,
    last_seq: chunks.length,
    proposed_by: null,
    created_at: 0,
    updated_at: 0,
  };
  // A connection of the server's own class over a transport that carries nothing: a call goes in as a text message,
  // is answered by a host that runs this method (params and result parsed by its schemas), and its reply, written at
  // once, counts as flushed a turn later, as a socket's write completes (the read cap then gives its bytes back).
  let deliver: (text: string) => void = () => {};
  let answered: (text: string) => void = () => {};
  const connection: ServerConnection = new ServerConnection(
    {
      send(text, flushed) {
        setImmediate(() => flushed?.());
        answered(text);
      },
      close() {},
      onMessage(listener) {
        deliver = listener;
      },
      onClose() {},
      bufferedAmount: () => 0,
    },
    {
      async dispatch(message) {
        const { id, params: sample } = message as { id: number; params: unknown };
        const parsed = params.safeParse(sample);
        if (!parsed.success) return JSON.stringify({ jsonrpc: "2.0", id, result: null });
        const reply = new ReplyParts();
        const answer = await entryGet.handler(parsed.data, { ...stand, connection, reply } as never);
        const valid = result.safeParse(answer).success;
        return new OutgoingReply(JSON.stringify({ jsonrpc: "2.0", id, result: valid ? answer : null }), reply.takeHooks());
      },
      connectionClosed() {},
    },
  );
  const stand = {
    project: { id: 0 },
    connection,
    core: {
      config: { limits: { maxReadBytes: 1024 * 1024 } },
      reads: new ReadCap(4 * 1024 * 1024),
      lifecycle: { requireRun: async () => ({ id: 0 }) },
      entries: { find: async () => row, channels: async () => [], readLines: memory.readLines },
    },
  };
  let valid = true;
  let id = 0;
  try {
    // Each kind of read a few times: V8 gives a function its feedback after some runs, not at the first
    // (bench/history/README.md).
    for (let round = 0; round < WARM_ROUNDS; round++) {
      for (const [sample, body] of [
        [{ run: "warm", path: row.path, tail: 2 }, "warm 2\nwarm 3\n"],
        [{ run: "warm", path: row.path, line: 3, limit: 2 }, "warm 3\nwarm 1\n"],
        [{ run: "warm", path: row.path, line: 12, limit: 2 }, "warm 3\nwarm 1\n"],
        [{ run: "warm", path: row.path, line: 1, limit: 2 }, "warm 1\nwarm 2\n"],
      ] as const) {
        const text = await new Promise<string>((resolve) => {
          answered = resolve;
          deliver(JSON.stringify({ jsonrpc: "2.0", id: ++id, method: "entry/get", params: sample }));
        });
        valid &&= (JSON.parse(text) as { result: { body: string } | null }).result?.body === body;
      }
    }
    // Once the last reply is flushed, the reads hold nothing.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    valid &&= stand.core.reads.heldBy(connection) === 0;
  } finally {
    memory.close();
  }
  const none = await store?.readLines(0, 3, 20, 1024);
  valid &&= none === undefined || none.lines === 0;
  if (valid) warmUps.done++;
  return valid;
}

/** How many times the warm-up makes each of its reads. */
const WARM_ROUNDS = 4;
