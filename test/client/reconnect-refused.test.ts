import { SpoolClient, SpoolRpcError, sayReconnects } from "spool/client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/**
 * A client that reconnects by itself (`SpoolClient.open`) into a project removed meanwhile: every try's `initialize` is
 * refused (NOT_FOUND). Each such connection is closed by the client, one loop tries at a time: the server never holds
 * more than the one being tried (they piled up, one every few hundred ms, for as long as the client lived). A real
 * in-process server over WebSocket.
 */
let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer({ localRunner: false });
});
afterAll(() => ts.stop());

it("closes each connection whose initialize is refused on a reconnect, and keeps trying with one at a time", async () => {
  (await ts.clientIn("going")).close();
  const admin = await ts.clientIn("elsewhere");
  const watcher = await SpoolClient.open(ts.server.url, {
    token: ts.server.token,
    reconnect: { project: "going", minMs: 10, maxMs: 20, client: { name: "stays", version: "1" } },
  });
  const open = () => [...ts.server.rpc.connections].filter((c) => !c.closed).length;
  await eventually(async () => open() === 2, 5_000, "the set-up client's connection to close");
  // Removing the project closes the connections joined to it; the client's tries are refused from then on.
  await admin.call("project/delete", { project: "going", runs: 0 });
  // A try every 10-20 ms: over 1.5 s some seventy, each refused. Open at any moment: the admin's, the one being tried,
  // and one finishing its close.
  let most = 0;
  for (const started = Date.now(); Date.now() - started < 1_500; ) {
    most = Math.max(most, open());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(most).toBeLessThanOrEqual(3);
  watcher.close();
  admin.close();
});

it("a client closed while it waits to reconnect opens nothing more, and its close listeners are told once", async () => {
  (await ts.clientIn("closing")).close();
  const client = await SpoolClient.open(ts.server.url, {
    token: ts.server.token,
    reconnect: { project: "closing", minMs: 200, maxMs: 200, client: { name: "closes", version: "1" } },
  });
  const told: [number, string][] = [];
  client.onClose(() => {
    throw new Error("a listener's own failure");
  });
  client.onClose((code, reason) => told.push([code, reason]));
  const mine = () => [...ts.server.rpc.connections].filter((c) => !c.closed && c.clientInfo?.name === "closes");
  expect(mine()).toHaveLength(1);
  // The server drops it; its user closes it while its reconnect waits its first 200 ms.
  mine()[0]!.close(1012, "dropped");
  await eventually(async () => client.closed, 5_000, "the client to see the drop");
  client.close();
  // Told at the close, not at the end of the try's delay; a listener that throws keeps none of the others from it.
  expect(told).toEqual([[1000, "client closing"]]);
  // Past several of its tries' delays: nothing of it joined again (it joined 200 ms later, with no one holding it).
  let most = 0;
  for (const started = Date.now(); Date.now() - started < 1_000; ) {
    most = Math.max(most, mine().length + [...ts.server.rpc.connections].filter((c) => !c.closed && !c.project).length);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(most).toBe(0);
  // The drop was the reconnect's to mend (not told); the user's close ended the client (told once, though no socket
  // was open to close).
  expect(told).toEqual([[1000, "client closing"]]);
});

it("tells onReconnectFailed why each try did not join (NOT_FOUND for a removed project), and a close from there ends the tries", async () => {
  (await ts.clientIn("removed")).close();
  const admin = await ts.clientIn("elsewhere-too");
  const client = await SpoolClient.open(ts.server.url, {
    token: ts.server.token,
    reconnect: { project: "removed", minMs: 10, maxMs: 20, client: { name: "told", version: "1" } },
  });
  const failures: { code: string | undefined; attempt: number }[] = [];
  let closedAt = 0;
  client.onReconnectFailed(() => {
    throw new Error("a listener's own failure");
  });
  client.onReconnectFailed((error, attempt) => {
    failures.push({ code: error instanceof SpoolRpcError ? error.errorCode : String(error), attempt });
    // Its user gives up at the third refusal.
    if (attempt === 3) {
      closedAt = Date.now();
      client.close();
    }
  });
  const reconnected: number[] = [];
  client.onReconnect(() => reconnected.push(Date.now()));
  // Removing the project drops the client; every try after is refused.
  await admin.call("project/delete", { project: "removed", runs: 0 });
  await eventually(async () => closedAt > 0, 10_000, "three refused tries");
  const mine = () => [...ts.server.rpc.connections].filter((c) => !c.closed && c.clientInfo?.name === "told");
  // Past several of its tries' delays: no fourth try, nothing of it open, never told it joined.
  await eventually(async () => mine().length === 0, 5_000, "the last try's socket to close");
  const seen = failures.length;
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(failures.length).toBe(seen);
  expect(failures).toEqual([
    { code: "NOT_FOUND", attempt: 1 },
    { code: "NOT_FOUND", attempt: 2 },
    { code: "NOT_FOUND", attempt: 3 },
  ]);
  expect(reconnected).toEqual([]);
  expect(mine()).toEqual([]);
  admin.close();
});

it("sayReconnects says why tries fail at tries 1, 2, 4, 8, …, and once that it joined again", async () => {
  (await ts.clientIn("comes-back")).close();
  const admin = await ts.clientIn("elsewhere-three");
  const client = await SpoolClient.open(ts.server.url, {
    token: ts.server.token,
    reconnect: { project: "comes-back", minMs: 10, maxMs: 20, client: { name: "said", version: "1" } },
  });
  const lines: string[] = [];
  sayReconnects(client, "the test's client", { warn: (m) => lines.push(m) });
  let tries = 0;
  client.onReconnectFailed((_error, attempt) => (tries = attempt));
  const back = new Promise<void>((resolve) => client.onReconnect(resolve));
  await admin.call("project/delete", { project: "comes-back", runs: 0 });
  await eventually(async () => tries >= 9, 10_000, "nine refused tries");
  // Made again: the next try joins.
  (await ts.clientIn("comes-back")).close();
  await back;
  const warned = lines.filter((l) => l.includes("still trying"));
  // Every power of two up to the last refused try (nine at least; more where making the project again took a while).
  const powers = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].filter((n) => n <= tries);
  expect(warned.map((l) => Number(/try (\d+) /.exec(l)![1]))).toEqual(powers);
  expect(warned[0]).toMatch(/^the test's client: the connection to the Spool server dropped, and try 1 to join again failed \(NOT_FOUND: .+\); still trying$/);
  // The line that ends them, as loud as they were (a bridge shows warnings alone by default), and the last line.
  expect(lines.filter((l) => !l.includes("still trying"))).toEqual([
    expect.stringMatching(/^the test's client: joined the Spool server again after \d+ failed tries$/),
  ]);
  expect(lines.at(-1)).toMatch(/joined the Spool server again/);
  client.close();
  admin.close();
});
