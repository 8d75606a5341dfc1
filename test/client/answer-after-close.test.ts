import { expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createMemoryTransportPair } from "../../src/rpc/transport.js";

/**
 * A request from the server that the client is still answering when the connection closes: the answer is dropped
 * (the server that asked is gone), never an unhandled rejection. The memory transport closes at once and tells its
 * listeners a moment later, which is when the answer used to be sent into it and throw.
 */
it("an answer finished after the connection closed is dropped, not thrown", async () => {
  const [serverSide, clientSide] = createMemoryTransportPair();
  const client = new SpoolClient(clientSide);
  let finish = (_: unknown) => undefined as unknown;
  const answering = new Promise((resolve) => (finish = resolve));
  let asked = () => undefined as unknown;
  const arrived = new Promise<void>((resolve) => (asked = resolve));
  client.handle("permission/ask", async () => {
    asked();
    return answering;
  });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    serverSide.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "permission/ask", params: {} }));
    await arrived;
    serverSide.close(1000, "bye");
    finish({ outcome: "allow" });
    // Two turns of the event loop: the answer's send, then where its rejection would be reported.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});
