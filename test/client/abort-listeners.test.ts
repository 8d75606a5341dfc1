import { getEventListeners } from "node:events";
import { expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createMemoryTransportPair } from "../../src/rpc/transport.js";

/**
 * One AbortSignal given to many calls (a session's or a page's, aborted when it ends) holds no listener of a call
 * that settled: each call's listener went with it. Before, every call left one behind for as long as the signal
 * lived (Node warns past ten; the calls' closures were never freed). Aborting still rejects a call in flight.
 * Over a memory transport whose other side answers every request.
 */
it("a signal shared by calls keeps no listener of a settled call, and its abort still rejects the call in flight", async () => {
  const [serverSide, clientSide] = createMemoryTransportPair();
  const hold = new Set<number>();
  serverSide.onMessage((text) => {
    const request = JSON.parse(text) as { id: number; params: { hold?: boolean } };
    if (request.params.hold) return void hold.add(request.id);
    serverSide.send(JSON.stringify({ jsonrpc: "2.0", id: request.id, result: { time: request.id } }));
  });
  const client = new SpoolClient(clientSide);
  const session = new AbortController();
  for (let i = 0; i < 50; i++) await client.request("ping", {}, { signal: session.signal });
  expect(getEventListeners(session.signal, "abort")).toHaveLength(0);

  const waiting = client.request("ping", { hold: true }, { signal: session.signal }).catch((error: unknown) => error);
  await new Promise((resolve) => setImmediate(resolve));
  expect(hold.size).toBe(1);
  expect(getEventListeners(session.signal, "abort")).toHaveLength(1);
  session.abort(new Error("session over"));
  expect(((await waiting) as Error).message).toBe("session over");
  expect(getEventListeners(session.signal, "abort")).toHaveLength(0);
  client.close();
});
