import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { sqliteOf, startTestServer, type TestServer } from "../helpers/server.js";

/** A small seeded PRNG so a failure can be replayed. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.SPOOL_FUZZ_SEED ?? 20261121);
const COUNT = Number(process.env.SPOOL_FUZZ_COUNT ?? 3000);

describe("hostile input", () => {
  let ts: TestServer;
  let log = "";
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    const c = await ts.clientIn("fuzz");
    await c.call("run/create", { alias: "fuzz-run" });
    log = (await c.call("proposal/create", { run: "fuzz-run", tool: "sh", sandbox: "full", command: "target" })).path;
    await c.call("run/resolve", { run: "fuzz-run", path: log, decision: "accept", runner: "self" });
    await c.call("proposal/create", { run: "fuzz-run", tool: "sh", command: "pending" });
    c.close();
  });
  afterAll(() => ts.stop());

  it(`${COUNT} random and mutated messages each get a JSON-RPC error or a valid result; the server stays up; the database stays sound`, async () => {
    const rand = prng(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
    const methods = [...ts.server.rpc.registry.methods.keys(), "no/such/method", "", "rpc.", "__proto__", "constructor", "stream\u0000"];
    const strings = [
      "",
      "../../etc/passwd",
      "log://turn_1/sh/../../../etc",
      "sh://turn_1/target_1",
      log,
      "'; DROP TABLE runs; --",
      '" OR 1=1 --',
      "\u0000\u0001\u0002",
      "x".repeat(100_000),
      "é✓😀",
      "fuzz-run",
      "\ud800",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a deliberate injection payload
      "${process.exit()}",
    ];
    const numbers = [-1, 0, 1, 2 ** 31, 2 ** 53 + 1, -(2 ** 53), 1e308, -1e308, 0.5, 1e-300];
    const deep = (depth: number): unknown => (depth === 0 ? 1 : { a: deep(depth - 1) });
    const value = (depth = 0): unknown => {
      switch (Math.floor(rand() * (depth > 2 ? 5 : 8))) {
        case 0:
          return pick(strings);
        case 1:
          return pick(numbers);
        case 2:
          return rand() < 0.5;
        case 3:
          return null;
        case 4:
          return Math.floor(rand() * 5);
        case 5:
          return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
        case 6:
          return params(depth + 1);
        default:
          return deep(200 + Math.floor(rand() * 2000));
      }
    };
    const fields = [
      "run",
      "path",
      "channel",
      "chunk",
      "seq",
      "encoding",
      "decision",
      "runner",
      "tool",
      "command",
      "cwd",
      "env",
      "tail",
      "line",
      "limit",
      "project",
      "protocolVersion",
      "alias",
      "model",
      "prompt",
      "subscription",
      "after",
      "reason",
      "name",
      "backend",
      "__proto__",
      "constructor",
    ];
    const params = (depth = 0): Record<string, unknown> =>
      Object.fromEntries(Array.from({ length: Math.floor(rand() * 6) }, () => [pick(fields), value(depth)]));

    const socket = new WebSocket(ts.server.url, { headers: { Authorization: `Bearer ${ts.server.token}` }, maxPayload: 64 * 1024 * 1024 });
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    const replies = new Map<number | string | null, unknown[]>();
    socket.on("message", (data) => {
      const parsed = JSON.parse(data.toString()) as unknown;
      for (const reply of Array.isArray(parsed) ? parsed : [parsed]) {
        const r = reply as { id?: number | string | null; method?: string };
        if (r.method) continue; // notifications (stream/data, run/proposal…)
        const list = replies.get(r.id ?? null) ?? [];
        list.push(reply);
        replies.set(r.id ?? null, list);
      }
    });
    const send = (payload: string | Buffer, binary = false) => socket.send(payload, { binary });
    send(JSON.stringify({ jsonrpc: "2.0", id: "init", method: "initialize", params: { project: "fuzz", protocolVersion: "1.0" } }));

    const expectedIds: number[] = [];
    const invalidIds: number[] = [];
    let expectedAnonymous = 0;
    for (let i = 0; i < COUNT; i++) {
      const kind = rand();
      if (kind < 0.55) {
        expectedIds.push(i);
        send(JSON.stringify({ jsonrpc: "2.0", id: i, method: pick(methods), params: rand() < 0.9 ? params() : value() }));
      } else if (kind < 0.65) {
        send(JSON.stringify({ jsonrpc: "2.0", method: pick(methods), params: params() })); // a notification: no reply
      } else if (kind < 0.75) {
        // Broken JSON: truncated, garbage, or invalid UTF-8 in a binary frame.
        const base = JSON.stringify({ jsonrpc: "2.0", id: i, method: pick(methods), params: params() });
        const broken = pick([base.slice(0, Math.floor(rand() * base.length)), "{", "]", "nul", "\u0000", `${base}}`]);
        if (rand() < 0.3) send(Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from("}")]), true);
        else send(broken || "{");
        expectedAnonymous++;
      } else if (kind < 0.85) {
        // Valid JSON, not a valid request: -32600, with the id when the id itself is valid.
        const withId = [
          { id: i },
          { jsonrpc: "1.0", id: i, method: "ping" },
          { jsonrpc: "2.0", id: i, method: 7 },
          { jsonrpc: "2.0", id: i, method: "ping", params: "x" },
        ];
        const withoutId = [42, "ping", { jsonrpc: "2.0", id: { x: 1 }, method: "ping" }, { jsonrpc: "2.0", id: [1], method: "ping" }];
        if (rand() < 0.5) {
          send(JSON.stringify(pick(withId)));
          invalidIds.push(i);
        } else {
          send(JSON.stringify(pick(withoutId)));
          expectedAnonymous++;
        }
      } else {
        // A batch of requests; each gets its reply.
        const batch = Array.from({ length: 1 + Math.floor(rand() * 4) }, (_, k) => ({
          jsonrpc: "2.0",
          id: `${i}.${k}`,
          method: pick(methods),
          params: params(),
        }));
        for (const b of batch) expectedIds.push(b.id as unknown as number);
        send(JSON.stringify(batch));
      }
    }
    send(JSON.stringify({ jsonrpc: "2.0", id: "last", method: "ping", params: {} }));
    const deadline = Date.now() + 60_000;
    while (!replies.has("last") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(replies.has("last"), "the server still answers after the fuzz").toBe(true);
    expect(socket.readyState).toBe(WebSocket.OPEN);

    for (const id of expectedIds) {
      const got = replies.get(id);
      expect(got, `reply to ${id}`).toHaveLength(1);
      const reply = got![0] as { result?: unknown; error?: { code: unknown; message: unknown; data?: { stack?: unknown } } };
      expect("result" in reply || "error" in reply).toBe(true);
      if (reply.error) {
        expect(Number.isInteger(reply.error.code)).toBe(true);
        expect(typeof reply.error.message).toBe("string");
        expect(JSON.stringify(reply.error)).not.toMatch(/at .*\.ts:\d+|node_modules/); // no stack traces
      }
    }
    for (const id of invalidIds) {
      expect(replies.get(id), `reply to invalid request ${id}`).toEqual([
        { jsonrpc: "2.0", id, error: { code: -32600, message: "Invalid Request", data: { code: "INVALID_REQUEST" } } },
      ]);
    }
    // Every malformed message got one anonymous error reply (parse error or invalid request).
    const anonymous = (replies.get(null) ?? []) as { error?: { code: number } }[];
    expect(anonymous.length).toBe(expectedAnonymous);
    expect(anonymous.every((r) => r.error && [-32700, -32600].includes(r.error.code))).toBe(true);
    socket.close();

    const integrity = sqliteOf(ts.server).pragma("integrity_check") as { integrity_check: string }[];
    expect(integrity).toEqual([{ integrity_check: "ok" }]);
    // The seeded data is intact: nothing the fuzz sent could reach another project or corrupt a run.
    const c = await ts.clientIn("fuzz");
    expect((await c.call("run/get", { run: "fuzz-run" })).run.alias).toBe("fuzz-run");
    c.close();
  }, 120_000);
});
