import { expect, it } from "vitest";
import { SpoolRpcError } from "../../src/client/errors.js";
import { type Resubscribe, watchStream } from "../../src/client/stream-watch.js";
import { ENTRY } from "../../src/protocol/status.js";

/**
 * A watch whose channel the server no longer lets it follow after a reconnect (the run removed, the caller's role
 * lowered: `stream/subscribe` refused) ends, telling the reader what it did not get, rather than failing every
 * reconnect of its client for ever (the client closed the joined connection and tried again, endlessly). Over a
 * stand-in for the client's calls: the first subscribe answers, the next is refused as the server refuses one.
 */
it("a resubscribe the server refuses ends that channel with `lost`, and the client's reconnect is not failed by it", async () => {
  let subscribes = 0;
  const client = {
    async call(method: string) {
      if (method !== "stream/subscribe") return {};
      if (++subscribes > 1) throw new SpoolRpcError('No run "gone" in this project', -32001, { code: "NOT_FOUND" });
      return { subscription: "s1", channels: [{ channel: 1, path: "sh://x", status: ENTRY.streaming, lastSeq: 3, bytes: 30 }] };
    },
    on: () => () => undefined,
  };
  const watches = new Set<Resubscribe>();
  const watch = await watchStream(client as never, watches, { run: "gone", path: "sh://x" }, () => undefined);
  expect(watches.size).toBe(1);
  for (const w of watches) await w.resubscribe();
  const ended = await watch.ended;
  expect(ended.get(1)).toEqual({ status: ENTRY.streaming, lost: 'not followed after seq 0: No run "gone" in this project' });
  // Ended: not asked for again at the next reconnect.
  expect(watches.size).toBe(0);
});
