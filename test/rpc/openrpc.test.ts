// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import { validateOpenRPCDocument } from "@open-rpc/schema-utils-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { buildOpenRpcDocument } from "../../src/rpc/discovery.js";
import type { MethodDefinition, NotificationDefinition } from "../../src/rpc/method.js";
import { MethodRegistry } from "../../src/rpc/registry.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

type OpenRpcDocument = Parameters<typeof validateOpenRPCDocument>[0];
type Doc = Record<string, any>;

/** The validator's verdict: `true`, or the message listing what the meta-schema rejected (so a failing test shows it). */
function validate(doc: Doc): true | string {
  const result = validateOpenRPCDocument(structuredClone(doc) as OpenRpcDocument);
  return result === true ? true : result.message;
}

/** Every `$ref` in the document, with whether it resolves to something inside the document. */
function refs(doc: Doc): { ref: string; at: string; resolves: boolean }[] {
  const found: { ref: string; at: string; resolves: boolean }[] = [];
  const resolve = (ref: string): unknown => {
    if (!ref.startsWith("#")) return undefined;
    let node: unknown = doc;
    for (const raw of ref.slice(1).split("/").slice(1)) {
      const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[key] : undefined;
    }
    return node;
  };
  const walk = (node: unknown, at: string) => {
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) walk(item, `${at}/${i}`);
    } else if (typeof node === "object" && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        if (key === "$ref" && typeof value === "string") found.push({ ref: value, at, resolves: resolve(value) !== undefined });
        else walk(value, `${at}/${key}`);
      }
    }
  };
  walk(doc, "#");
  return found;
}

/** Keys found anywhere in the document (schema keywords and data alike). */
function keysIn(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const item of node) keysIn(item, out);
  else if (typeof node === "object" && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      out.add(key);
      keysIn(value, out);
    }
  }
  return out;
}

describe("rpc.discover is a valid OpenRPC document", () => {
  let ts: TestServer;
  let doc: Doc;
  beforeAll(async () => {
    ts = await startTestServer();
    const client = await ts.client("websocket");
    doc = (await client.call("rpc.discover", {})) as Doc;
  });
  afterAll(() => ts?.stop());

  it("validates against the OpenRPC meta-schema (@open-rpc/schema-utils-js)", () => {
    expect(doc.openrpc).toBe("1.3.2");
    expect(validate(doc)).toBe(true);
  });

  it("lists every registered method and notification, once", () => {
    const registry = ts.server.rpc.registry;
    const methods = (doc.methods as { name: string }[]).map((m) => m.name);
    expect(methods).toEqual([...registry.methods.keys()].sort((a, b) => a.localeCompare(b)));
    expect(methods).toContain("rpc.discover");
    const notifications = (doc["x-notifications"] as { name: string }[]).map((n) => n.name);
    expect(notifications).toEqual([...registry.notifications.keys()].sort((a, b) => a.localeCompare(b)));
  });

  it("shows a proposal's producer and a started producer's place with their fields typed, not as an open attribute bag", () => {
    const resolve = (schema: Doc): Doc => {
      const ref = schema.$ref as string | undefined;
      if (!ref) return schema;
      return ref
        .split("/")
        .slice(1)
        .reduce<Doc>((node, key) => node[key] as Doc, doc);
    };
    const param = (notification: string, name: string) => {
      const note = (doc["x-notifications"] as Doc[]).find((n) => n.name === notification)!;
      return resolve((note.params as Doc[]).find((p) => p.name === name)!.schema as Doc);
    };
    const producer = param("run/proposal", "producer");
    const fields = producer.properties as Record<string, Doc>;
    for (const field of ["command", "cwd", "env", "tty", "runner", "sandbox", "exitCode", "signal", "durationMs", "resolvedBy", "channels"]) {
      expect(fields[field], field).toBeDefined();
    }
    expect(resolve(fields.exitCode!)).toEqual(expect.objectContaining({ anyOf: expect.arrayContaining([expect.objectContaining({ type: "integer" })]) }));
    expect(producer.additionalProperties).not.toBe(true);
    const place = param("stream/started", "process");
    expect(Object.keys(place.properties as Doc).sort()).toEqual(["backend", "container", "host", "pid"]);
    expect(place.additionalProperties).not.toEqual({});
  });

  it("shows entry/get's and entry/list's producer and channel with their fields typed, besides the attributes", () => {
    const resolve = (schema: Doc): Doc => {
      const ref = schema.$ref as string | undefined;
      if (!ref) return schema;
      return ref
        .split("/")
        .slice(1)
        .reduce<Doc>((node, key) => node[key] as Doc, doc);
    };
    const result = (name: string) => resolve((doc.methods as Doc[]).find((m) => m.name === name)!.result.schema as Doc);
    const typed = (entry: Doc, field: string) => {
      const schema = resolve(entry.properties[field] as Doc);
      const object = (schema.anyOf as Doc[] | undefined)?.map(resolve).find((s) => s.type === "object") ?? schema;
      return object as Doc;
    };
    const listed = resolve(result("entry/list").properties.entries.items as Doc);
    for (const entry of [result("entry/get"), listed]) {
      expect(entry.required).toEqual(expect.arrayContaining(["producer", "channel", "attributes"]));
      const producer = typed(entry, "producer");
      const fields = producer.properties as Record<string, Doc>;
      for (const field of ["command", "cwd", "env", "state", "exitCode", "signal", "durationMs", "channels", "extra"])
        expect(fields[field], field).toBeDefined();
      expect(resolve(fields.state!).enum).toContain("running");
      expect(producer.additionalProperties).not.toBe(true);
      const channel = typed(entry, "channel");
      expect(Object.keys(channel.properties as Doc)).toEqual(expect.arrayContaining(["channel", "name", "path", "status", "bytes", "lines"]));
    }
  });

  it("describes params by name with one content descriptor per field, and every $ref resolves", () => {
    for (const method of doc.methods as Doc[]) {
      expect(method.paramStructure).toBe("by-name");
      for (const param of method.params as Doc[]) {
        expect(param).toEqual(expect.objectContaining({ name: expect.any(String), required: expect.any(Boolean), schema: expect.anything() }));
      }
      expect(method.result).toEqual(expect.objectContaining({ name: "result", schema: expect.anything() }));
    }
    expect(refs(doc).filter((r) => !r.resolves)).toEqual([]);
    expect(keysIn(doc.methods)).not.toContain("$schema");
  });

  it("keeps each error's stable code and summary without fields the meta-schema forbids", () => {
    const errors = doc.components.errors as Record<string, Doc>;
    expect(Object.keys(errors).length).toBeGreaterThan(0);
    for (const [name, error] of Object.entries(errors)) {
      expect(Object.keys(error).sort()).toEqual(["code", "data", "message"]);
      expect(error.data.code).toBe(name);
      expect(error.message.length).toBeGreaterThan(0);
    }
    expect(errors.SEQ_GAP).toMatchObject({ code: -32021, data: { code: "SEQ_GAP" } });
    expect(errors.SEQ_GAP!.message).toContain("seq");
  });

  // The check must be able to fail: broken copies of the served document are rejected, saying why.
  const breakages: [string, (doc: Doc) => void, RegExp][] = [
    ["an error object with a `description`", (d) => (d.components.errors.NOT_FOUND.description = "not allowed here"), /description/],
    ["an `x-` extension on an error object", (d) => (d.components.errors.NOT_FOUND["x-area"] = "resource"), /x-area/],
    ["an unknown paramStructure", (d) => (d.methods[0].paramStructure = "named"), /paramStructure|enum|oneOf/],
    ["a content descriptor without a schema", (d) => (d.methods.find((m: Doc) => m.params.length > 0).params[0].schema = undefined), /schema|oneOf/],
    ["a schema with an unknown type", (d) => (d.methods[0].result.schema = { type: "int" }), /type|oneOf|anyOf|enum/],
    ["a non-`x-` field at the top level", (d) => (d.notifications = d["x-notifications"]), /notifications/],
  ];
  for (const [what, breakIt, mentions] of breakages) {
    it(`rejects a copy with ${what}`, () => {
      const broken = JSON.parse(JSON.stringify(doc)) as Doc;
      breakIt(broken);
      const verdict = validate(broken);
      expect(verdict).not.toBe(true);
      expect(verdict).toMatch(mentions);
    });
  }
});

describe("buildOpenRpcDocument with schemas that are hard to describe", () => {
  const Tree: z.ZodType = z.object({
    label: z.string(),
    get children() {
      return z.array(Tree);
    },
  });
  const Shared = z.object({ a: z.string(), b: z.number().int().optional() }).meta({ id: "OpenRpcTestShared", description: "A named schema" });
  const Chain: z.ZodType = z.object({
    value: z.number(),
    get next() {
      return Chain.optional();
    },
  });
  const Named = z.strictObject({ first: z.string(), second: z.boolean().optional() }).meta({ id: "OpenRpcTestParams" });

  const method = (name: string, params: z.ZodType, result: z.ZodType = z.object({ ok: z.literal(true) })): MethodDefinition => ({
    name,
    description: `${name} for the test`,
    params,
    result,
    handler: () => ({ ok: true }),
  });

  let doc: Doc;
  beforeAll(() => {
    const registry = new MethodRegistry();
    registry.addMethod(
      method(
        "test/kinds",
        z.strictObject({
          positive: z.number().positive().lt(10).describe("0 < x < 10"),
          maybe: z.number().int().nullable(),
          either: z.union([z.string(), z.number(), z.null()]),
          pair: z.tuple([z.string(), z.number()]),
          when: z.date().optional(),
          big: z.bigint().optional(),
          attrs: z.record(z.string(), z.unknown()),
          nothing: z.literal(null),
          mode: z.enum(["a", "b"]).default("a"),
          length: z.string().transform((s) => s.length),
          word: z.string().regex(/^\p{L}+$/u),
          email: z.email().optional(),
          shape: z.discriminatedUnion("kind", [z.object({ kind: z.literal("dot") }), z.object({ kind: z.literal("box"), w: z.number() })]),
          tree: Tree,
          shared: Shared,
        }),
        z.object({ shared: Shared, also: Shared, tree: Tree, chain: Chain }),
      ),
      "test",
    );
    registry.addMethod(method("test/named", Named, Shared), "test");
    registry.addMethod(method("test/self", z.strictObject({}), Chain), "test");
    registry.addMethod(method("test/union", z.union([z.strictObject({ id: z.number() }), z.strictObject({ id: z.number(), name: z.string() })])), "test");
    const notification: NotificationDefinition = {
      name: "test/ask",
      description: "A server → client request",
      direction: "server",
      params: z.object({ question: z.string(), tree: Tree }),
      reply: z.object({ answer: z.string().default("yes") }),
    };
    registry.addNotification(notification, "test");
    doc = buildOpenRpcDocument(registry, { title: "test", version: "0" }) as Doc;
  });

  const find = (name: string) => (doc.methods as Doc[]).find((m) => m.name === name)!;

  it("is valid and every $ref resolves inside the document", () => {
    expect(validate(doc)).toBe(true);
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(0);
    expect(all.filter((r) => !r.resolves)).toEqual([]);
    for (const r of all) expect(r.ref).toMatch(/^#\/components\/schemas\//);
  });

  it("moves named, shared and recursive schemas to components.schemas", () => {
    const schemas = doc.components.schemas as Record<string, Doc>;
    expect(schemas.OpenRpcTestShared).toMatchObject({ type: "object", description: "A named schema" });
    // Input and output views of one id differ (output objects are closed), so both are kept under distinct names.
    expect(Object.keys(schemas).filter((k) => k.startsWith("OpenRpcTestShared"))).toHaveLength(2);
    const tree = find("test/kinds").params.find((p: Doc) => p.name === "tree").schema;
    expect(tree.$ref).toMatch(/^#\/components\/schemas\//);
    const treeSchema = schemas[tree.$ref.slice("#/components/schemas/".length)]!;
    expect(treeSchema.properties.children.items.$ref).toBe(tree.$ref);
  });

  it("emits draft-07 schemas without $schema, $id or id", () => {
    const kinds = find("test/kinds");
    const param = (name: string) => kinds.params.find((p: Doc) => p.name === name);
    expect(param("pair").schema).toMatchObject({ type: "array", items: [{ type: "string" }, { type: "number" }], additionalItems: false });
    expect(param("positive")).toMatchObject({ description: "0 < x < 10", required: true, schema: { exclusiveMinimum: 0, exclusiveMaximum: 10 } });
    expect(param("mode")).toMatchObject({ required: false });
    const keys = keysIn([doc.methods, doc.components.schemas, doc["x-notifications"]]);
    for (const key of ["$schema", "$id", "id", "$defs", "definitions", "prefixItems"]) expect(keys).not.toContain(key);
  });

  it("describes a named (id) params schema by its fields, and a self-recursive result by reference", () => {
    expect(find("test/named").params.map((p: Doc) => [p.name, p.required])).toEqual([
      ["first", true],
      ["second", false],
    ]);
    expect(find("test/named").result.schema).toMatchObject({ type: "object", properties: { a: { type: "string" } } });
    const self = find("test/self").result.schema;
    expect(self.properties.next).toBeDefined();
    expect(refs({ ...doc, probe: self }).every((r) => r.resolves)).toBe(true);
  });

  it("describes a union of param objects by all their fields", () => {
    expect(find("test/union").params.map((p: Doc) => [p.name, p.required])).toEqual([
      ["id", true],
      ["name", false],
    ]);
  });
});
