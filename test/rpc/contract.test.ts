// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { definePlugin } from "../../src/plugins/plugin.js";
import { RUN } from "../../src/protocol/status.js";
import { defineMethod } from "../../src/rpc/method.js";
import { describeWithInfra } from "../helpers/infra.js";
import { normalize, outcome } from "../helpers/normalize.js";
import { freshDatabase } from "../helpers/postgres.js";
import { rawExchange } from "../helpers/raw.js";
import { startTestServer, type TestServer, type TransportKind } from "../helpers/server.js";

// A tiny plugin so the suite can check that notifications reach exactly one project's connections.
const echoPlugin = definePlugin({
  name: "test-echo",
  dependencies: ["session"],
  setup(app) {
    app.notification({ name: "test/echoed", description: "Echo to the project", direction: "server", params: z.object({ text: z.string() }) });
    app.method(
      defineMethod({
        name: "test/echo",
        description: "Notifies every connection of the caller's project",
        params: z.strictObject({ text: z.string() }),
        result: z.object({ sent: z.literal(true) }),
        handler: ({ text }, ctx) => {
          app.notifyProject(ctx.project.id, "test/echoed", { text });
          return { sent: true as const };
        },
      }),
    );
  },
});

/**
 * The contract suite: every scenario runs against two fresh servers, once over
 * the in-process transport and once over a real WebSocket, and must give the
 * same (normalized) results.
 */
type Scenario = { name: string; run: (ts: TestServer, kind: TransportKind) => Promise<unknown>; check: (out: any) => void };

const scenarios: Scenario[] = [
  {
    name: "ping works before initialize",
    run: async (ts, kind) => outcome((await ts.client(kind)).call("ping", {})),
    check: (out) => expect(out.result.pong).toBe(true),
  },
  {
    name: "initialize binds the connection to a project and reports the protocol",
    run: async (ts, kind) => outcome((await ts.client(kind)).initialize("alpha", { root: ts.root, client: { name: "test", version: "1" } })),
    check: (out) => {
      expect(out.result.protocolVersion).toBe("1.0");
      expect(out.result.server.name).toBe("spool");
      // Its TCP address (each server's own port: compared as present, not equal).
      expect(out.result.server.url).toBe("<url>");
      expect(out.result.projectId).toBe(1);
    },
  },
  {
    name: "a second initialize on one connection is ALREADY_INITIALIZED",
    run: async (ts, kind) => {
      const c = await ts.clientIn("alpha", kind);
      return outcome(c.initialize("beta", { root: ts.root }));
    },
    check: (out) => expect(out.error.data.code).toBe("ALREADY_INITIALIZED"),
  },
  {
    name: "an unsupported protocol version is refused with UNSUPPORTED",
    run: async (ts, kind) => outcome((await ts.client(kind)).call("initialize", { project: "alpha", protocolVersion: "9.0" })),
    check: (out) => expect(out.error.data).toMatchObject({ code: "UNSUPPORTED", supported: "1.0" }),
  },
  {
    name: "a method before initialize is NOT_INITIALIZED and the connection keeps working",
    run: async (ts, kind) => {
      const c = await ts.client(kind);
      const before = await outcome(c.call("run/list", {}));
      await c.initialize("alpha", { root: ts.root });
      const after = await outcome(c.call("run/list", {}));
      return { before, after };
    },
    check: (out) => {
      expect(out.before.error).toEqual({ code: -32002, data: { code: "NOT_INITIALIZED" } });
      expect(out.after.result).toEqual({ runs: [] });
    },
  },
  {
    name: "malformed JSON is -32700 and the same connection keeps working",
    run: async (ts, kind) => {
      const c = await ts.clientIn("alpha", kind);
      const reply = await rawExchange(c.transport, '{"jsonrpc":"2.0","id":1,"method":');
      return { reply, after: await outcome(c.call("ping", {})) };
    },
    check: (out) => {
      expect(out.reply).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700, data: { code: "PARSE_ERROR" } } });
      expect(out.after.result.pong).toBe(true);
    },
  },
  {
    name: "a message that is not a request is -32600",
    run: async (ts, kind) => {
      const c = await ts.client(kind);
      return [await rawExchange(c.transport, '{"hello":"world"}'), await rawExchange(c.transport, "42"), await rawExchange(c.transport, "[]")];
    },
    check: (out) => {
      for (const reply of out) expect(reply.error).toMatchObject({ code: -32600, data: { code: "INVALID_REQUEST" } });
    },
  },
  {
    name: "an unknown method is -32601",
    run: async (ts, kind) => outcome((await ts.clientIn("alpha", kind)).request("no/such/method")),
    check: (out) => expect(out.error).toEqual({ code: -32601, data: { code: "METHOD_NOT_FOUND" } }),
  },
  {
    name: "unknown and mistyped fields are -32602 naming each field",
    run: async (ts, kind) => {
      const c = await ts.clientIn("alpha", kind);
      return {
        unknown: await outcome(c.request("run/create", { alias: "a", colour: "red" })),
        mistyped: await outcome(c.request("run/get", { run: 42 })),
        missing: await outcome(c.request("run/get", {})),
        runs: await outcome(c.call("run/list", {})),
      };
    },
    check: (out) => {
      expect(out.unknown.error.code).toBe(-32602);
      expect(out.unknown.error.data.issues).toEqual([{ path: "(params)", message: "unknown field(s): colour" }]);
      expect(out.mistyped.error.data.issues[0].path).toBe("run");
      expect(out.missing.error.data.issues[0].path).toBe("run");
      // Nothing was created by the refused call.
      expect(out.runs.result.runs).toEqual([]);
    },
  },
  {
    name: "runs are created, fetched and listed; aliases are unique within a project",
    run: async (ts, kind) => {
      const c = await ts.clientIn("alpha", kind);
      return {
        created: await outcome(c.call("run/create", { alias: "first" })),
        auto: await outcome(c.call("run/create", {})),
        again: await outcome(c.call("run/create", { alias: "first" })),
        withModel: await outcome(c.call("run/create", { model: "gpt" })),
        got: await outcome(c.call("run/get", { run: "first" })),
        list: await outcome(c.call("run/list", {})),
      };
    },
    check: (out) => {
      expect(out.created.result.run).toMatchObject({ alias: "first", status: RUN.done, model: null, mode: "act", turn: 1 });
      expect(out.auto.result.run.alias).toBe("run-1"); // "first" was named by its client: not counted
      expect(out.again.error.data.code).toBe("CONFLICT");
      expect(out.withModel.error.data).toMatchObject({ code: "INVALID_PARAMS", model: "gpt" }); // no model alias is configured here
      expect(out.got.result.run.alias).toBe("first");
      expect(out.list.result.runs.map((r: { alias: string }) => r.alias)).toEqual(["run-1", "first"]);
    },
  },
  {
    name: "another project's run is simply not found",
    run: async (ts, kind) => {
      const a = await ts.clientIn("alpha", kind);
      const b = await ts.clientIn("beta", kind);
      await a.call("run/create", { alias: "secret" });
      return {
        get: await outcome(b.call("run/get", { run: "secret" })),
        entries: await outcome(b.call("entry/list", { run: "secret" })),
        list: await outcome(b.call("run/list", {})),
        sameAliasInB: await outcome(b.call("run/create", { alias: "secret" })),
        owner: await outcome(a.call("run/get", { run: "secret" })),
      };
    },
    check: (out) => {
      expect(out.get.error).toEqual({ code: -32010, data: { code: "NOT_FOUND", run: "secret" } });
      expect(out.entries.error.data.code).toBe("NOT_FOUND");
      expect(out.list.result.runs).toEqual([]);
      expect(out.sameAliasInB.result.run.alias).toBe("secret");
      expect(out.owner.result.run.alias).toBe("secret");
    },
  },
  {
    name: "runs created without an alias are numbered per project (each project's first is run-1); an alias a client took is skipped",
    run: async (ts, kind) => {
      const a = await ts.clientIn("numbered-a", kind);
      const b = await ts.clientIn("numbered-b", kind);
      const alias = async (c: typeof a, params: Record<string, unknown> = {}) => (await c.call("run/create", params)).run.alias as string;
      return {
        a: [await alias(a), await alias(a, { alias: "run-3" }), await alias(a), await alias(a)],
        b: [await alias(b), await alias(b)],
      };
    },
    check: (out) => {
      expect(out.a).toEqual(["run-1", "run-3", "run-2", "run-4"]);
      expect(out.b).toEqual(["run-1", "run-2"]);
    },
  },
  {
    name: "entries of a new run: empty list, unknown path NOT_FOUND",
    run: async (ts, kind) => {
      const c = await ts.clientIn("alpha", kind);
      await c.call("run/create", { alias: "r" });
      return {
        list: await outcome(c.call("entry/list", { run: "r" })),
        get: await outcome(c.call("entry/get", { run: "r", path: "log://turn_1/sh/nope" })),
        badPath: await outcome(c.call("entry/get", { run: "r", path: "../etc/passwd" })),
      };
    },
    check: (out) => {
      expect(out.list.result.entries).toEqual([]);
      expect(out.get.error.data.code).toBe("NOT_FOUND");
      expect(out.badPath.error.code).toBe(-32602);
    },
  },
  {
    name: "a batch gets one response per request, in order",
    run: async (ts, kind) => {
      const c = await ts.clientIn("alpha", kind);
      return rawExchange(
        c.transport,
        JSON.stringify([
          { jsonrpc: "2.0", id: "a", method: "ping" },
          { jsonrpc: "2.0", id: "b", method: "nope" },
          { jsonrpc: "2.0", method: "ping" },
          { jsonrpc: "2.0", id: "c", method: "run/get", params: { run: "missing" } },
        ]),
      ).then(normalize);
    },
    check: (out) => {
      expect(out.map((r: { id: string }) => r.id)).toEqual(["a", "b", "c"]);
      expect(out[0].result.pong).toBe(true);
      expect(out[1].error.code).toBe(-32601);
      expect(out[2].error.data.code).toBe("NOT_FOUND");
    },
  },
  {
    name: "notifications reach exactly the connections of the project",
    run: async (ts, kind) => {
      const a1 = await ts.clientIn("alpha", kind);
      const a2 = await ts.clientIn("alpha", kind);
      const b = await ts.clientIn("beta", kind);
      const seen: string[] = [];
      a1.on("test/echoed", (p) => seen.push(`a1:${p.text}`));
      a2.on("test/echoed", (p) => seen.push(`a2:${p.text}`));
      b.on("test/echoed", (p) => seen.push(`b:${p.text}`));
      await a1.request("test/echo", { text: "hi" });
      await b.call("ping", {}); // a round trip on b, after which a stray notification would have arrived
      await a2.call("ping", {});
      await a1.call("ping", {});
      return seen.sort();
    },
    check: (out) => expect(out).toEqual(["a1:hi", "a2:hi"]),
  },
  {
    name: "rpc.discover describes every method and notification from its schema",
    run: async (ts, kind) => outcome((await ts.client(kind)).call("rpc.discover", {})),
    check: (out) => {
      const doc = out.result;
      expect(doc.openrpc).toMatch(/^1\./);
      const names = doc.methods.map((m: { name: string }) => m.name);
      expect(names).toEqual(
        expect.arrayContaining(["ping", "initialize", "rpc.discover", "run/create", "run/get", "run/list", "entry/get", "entry/list", "test/echo"]),
      );
      const runGet = doc.methods.find((m: { name: string }) => m.name === "run/get");
      expect(runGet.params).toEqual([expect.objectContaining({ name: "run", required: true })]);
      expect(runGet.result.schema.properties.run).toBeDefined();
      expect(doc["x-notifications"].map((n: { name: string }) => n.name)).toContain("test/echoed");
      expect(doc.components.errors.SEQ_GAP.code).toBe(-32021);
    },
  },
];

describe("contract suite: in-process and WebSocket transports agree", () => {
  const servers: Partial<Record<TransportKind, TestServer>> = {};

  beforeAll(async () => {
    servers.memory = await startTestServer({ extraPlugins: [echoPlugin] });
    servers.websocket = await startTestServer({ extraPlugins: [echoPlugin] });
  });
  afterAll(async () => {
    await servers.memory?.stop();
    await servers.websocket?.stop();
  });

  for (const scenario of scenarios) {
    it(scenario.name, async () => {
      // Both servers see the same scenarios in the same order, so their state (ids included) stays identical.
      const memory = await scenario.run(servers.memory!, "memory");
      const websocket = await scenario.run(servers.websocket!, "websocket");
      expect(websocket).toEqual(memory);
      scenario.check(memory);
    });
  }
});

describeWithInfra("postgres", "contract suite: a PostgreSQL store answers as the SQLite store does", () => {
  const servers: { sqlite?: TestServer; postgres?: TestServer } = {};
  let database: Awaited<ReturnType<typeof freshDatabase>>;

  beforeAll(async () => {
    database = await freshDatabase();
    servers.sqlite = await startTestServer({ extraPlugins: [echoPlugin] });
    servers.postgres = await startTestServer({ extraPlugins: [echoPlugin], database: database.url });
  });
  afterAll(async () => {
    await servers.sqlite?.stop();
    await servers.postgres?.stop();
    await database?.drop();
  });

  for (const scenario of scenarios) {
    it(scenario.name, async () => {
      const sqlite = await scenario.run(servers.sqlite!, "websocket");
      const postgres = await scenario.run(servers.postgres!, "websocket");
      expect(postgres).toEqual(sqlite);
      scenario.check(postgres);
    });
  }
});
