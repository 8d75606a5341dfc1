import { SpoolClient, SpoolRpcError } from "spool/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY } from "../../src/protocol/status.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("the typed client (spool/client)", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
  });
  afterAll(() => ts.stop());

  it("calls methods with typed params and results, and aborts a call with an AbortSignal", async () => {
    const client = await SpoolClient.connect(ts.server.url, { token: ts.server.token });
    const init = await client.initialize("typed", { root: ts.root });
    expect(init.protocolVersion).toBe("1.0");
    const { run } = await client.call("run/create", { alias: "typed-run" });
    expect(run.alias).toBe("typed-run");
    const error = await client.call("run/get", { run: "missing" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpoolRpcError);
    expect((error as SpoolRpcError).errorCode).toBe("NOT_FOUND");
    const controller = new AbortController();
    controller.abort(new Error("changed my mind"));
    await expect(client.call("ping", {}, { signal: controller.signal })).rejects.toThrow("changed my mind");
    client.close();
  });

  it("reconnects by itself and resumes a live watch from its last seq: no chunk lost or repeated", async () => {
    const producer = await ts.clientIn("typed");
    await producer.call("run/create", { alias: "watched" });
    const { path } = await producer.call("proposal/create", { run: "watched", tool: "sh", sandbox: "full", command: "produce" });
    await producer.call("run/resolve", { run: "watched", path, decision: "accept", runner: "self" });
    const watcher = await SpoolClient.open(ts.server.url, {
      token: ts.server.token,
      reconnect: { project: "typed", minMs: 20, client: { name: "watcher", version: "1" } },
    });
    const got: string[] = [];
    const watch = await watcher.watch({ run: "watched", path, channel: 1 }, (c) => got.push(c.data.toString()));
    const reconnected = new Promise<void>((resolve) => watcher.onReconnect(resolve));
    for (let seq = 1; seq <= 5; seq++) await producer.call("stream", { run: "watched", path, channel: 1, chunk: `a${seq}\n`, seq });
    await new Promise((r) => setTimeout(r, 100));
    // The server drops the watcher's connection; chunks keep coming meanwhile.
    const connection = [...ts.server.rpc.connections].find((c) => c.clientInfo?.name === "watcher");
    expect(connection).toBeDefined();
    connection!.close(1012, "dropped");
    for (let seq = 6; seq <= 10; seq++) await producer.call("stream", { run: "watched", path, channel: 1, chunk: `a${seq}\n`, seq });
    await reconnected;
    for (let seq = 11; seq <= 12; seq++) await producer.call("stream", { run: "watched", path, channel: 1, chunk: `a${seq}\n`, seq });
    await producer.call("stream/completed", { run: "watched", path, exit_code: 0 });
    const ended = await watch.ended;
    expect(ended.get(1)?.status).toBe(ENTRY.done);
    expect(got.join("")).toBe(Array.from({ length: 12 }, (_, i) => `a${i + 1}\n`).join(""));
    expect(watch.lastSeq.get(1)).toBe(12);
    watcher.close();
  });
});
