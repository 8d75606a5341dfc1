import { expect, it } from "vitest";
import { CallTimeoutError, SpoolClient } from "../../src/client/spool-client.js";
import { createMemoryTransportPair } from "../../src/rpc/transport.js";

/**
 * A client given `callTimeoutMs` (the web page: 30 s) fails a call whose answer does not come within it, with a typed
 * error naming the method: a reply that never came left the page's conversation stale for good. An answer that comes
 * later is ignored; a call that opts out (`timeoutMs: 0`, a subscription's long replay) waits; one answered in time
 * is not failed later. Over a memory transport whose other side answers only when told.
 */
it("a call not answered within the client's deadline fails with CallTimeoutError; later answers are ignored; timeoutMs 0 waits", async () => {
  const [serverSide, clientSide] = createMemoryTransportPair();
  const asked: { id: number; method: string }[] = [];
  serverSide.onMessage((text) => asked.push(JSON.parse(text)));
  const answer = (id: number) => serverSide.send(JSON.stringify({ jsonrpc: "2.0", id, result: { time: id } }));
  const client = new SpoolClient(clientSide, { callTimeoutMs: 50 });

  const started = Date.now();
  const unanswered = client.call("ping", {}).catch((error: unknown) => error);
  const patient = client.call("ping", {}, { timeoutMs: 0 });
  const quick = client.call("ping", {});
  await new Promise((resolve) => setImmediate(resolve));
  expect(asked.map((r) => r.method)).toEqual(["ping", "ping", "ping"]);
  answer(asked[2]!.id);
  expect(await quick).toEqual({ time: asked[2]!.id });

  const error = await unanswered;
  expect(error).toBeInstanceOf(CallTimeoutError);
  expect((error as Error).message).toBe("ping: no answer within 0.05 s");
  expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  // Its answer, late, settles nothing (and throws nothing); the call that opted out is still waiting and gets its own.
  answer(asked[0]!.id);
  answer(asked[1]!.id);
  expect(await patient).toEqual({ time: asked[1]!.id });
  client.close();
});
