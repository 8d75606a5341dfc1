import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describeWithInfra("postgres", "the PostgreSQL store", () => {
  let ts: TestServer;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
    ts = await startTestServer({ database: db.url, localRunner: false });
  });
  afterAll(async () => {
    await ts.stop();
    await db.drop();
  });
  it("stores a proposal, its acceptance and streamed output, and reads it back by glob, tail and whole", async () => {
    const c = await ts.clientIn("p");
    await c.call("run/create", { alias: "r" });
    const { path } = await c.call("proposal/create", { run: "r", tool: "sh", command: "x", env: { A: "1" } });
    const accepted = await c.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" });
    await c.call("stream", { run: "r", path, channel: 1, chunk: "a\nb\n", seq: 1 });
    await c.call("stream", { run: "r", path, channel: 1, chunk: "c\n", seq: 2 });
    await c.call("stream/completed", { run: "r", path, exit_code: 0 });
    const got = await c.call("entry/get", { run: "r", path: accepted.channels[0]!.path });
    expect(got.body).toBe("a\nb\nc\n");
    expect(got.lines).toBe(3);
    const list = await c.call("entry/list", { run: "r", pattern: "sh://*" });
    expect(list.entries.length).toBe(2);
    const tail = await c.call("entry/get", { run: "r", path: accepted.channels[0]!.path, tail: 1 });
    expect(tail.body).toBe("c\n");
  });
});
