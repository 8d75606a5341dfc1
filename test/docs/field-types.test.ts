import { describe, expect, it } from "vitest";
import { z } from "zod";
import { fieldList, fieldType } from "../../src/docs/generate.js";

// SPEC.md's parameter tables render each field as `name`: type. These pin the rendering.
describe("SPEC field types", () => {
  it("renders every kind of field a method schema uses", () => {
    const Tree: z.ZodType = z.object({
      label: z.string(),
      get children() {
        return z.array(Tree);
      },
    });
    const schema = z.strictObject({
      count: z.number().int(),
      ratio: z.number(),
      flag: z.boolean(),
      exit_code: z.number().int().nullable(),
      note: z.string().nullable().optional(),
      id: z.union([z.string(), z.number().int()]),
      tags: z.array(z.string()),
      rows: z.array(z.object({ a: z.string() })),
      mixed: z.array(z.union([z.string(), z.number()])),
      mode: z.enum(["raw", "model"]),
      maybe_mode: z.enum(["a", "b"]).nullable(),
      attrs: z.record(z.string(), z.unknown()),
      pong: z.literal(true),
      kind: z.literal("run"),
      nothing: z.null(),
      size: z.number().int().default(10),
      any: z.unknown(),
      pair: z.tuple([z.string(), z.number()]),
      tree: Tree,
      shape: z.discriminatedUnion("k", [z.object({ k: z.literal("a") }), z.object({ k: z.literal("b") })]),
      pipe: z.literal(["a|b", 1, null]),
    });
    const fields = Object.fromEntries(
      fieldList(schema)
        .split(/, (?=`)/)
        .map((field) => /^`([^`]+)`: (.*)$/.exec(field)!.slice(1, 3) as [string, string]),
    );
    expect(fields).toEqual({
      count: "integer",
      ratio: "number",
      flag: "boolean",
      exit_code: "integer\\|null",
      "note?": "string\\|null",
      id: "string\\|integer",
      tags: "string[]",
      rows: "object[]",
      mixed: "(string\\|number)[]",
      mode: '"raw"\\|"model"',
      maybe_mode: '"a"\\|"b"\\|null',
      attrs: "object",
      pong: "true",
      kind: '"run"',
      nothing: "null",
      "size?": "integer",
      any: "any",
      pair: "[string, number]",
      tree: "object",
      shape: "object",
      pipe: '"a\\|b"\\|1\\|null',
    });
  });

  it("renders the whole list as a table cell", () => {
    expect(fieldList(z.strictObject({ run: z.string(), exit_code: z.number().int().nullable().optional(), lines: z.array(z.string()) }))).toBe(
      "`run`: string, `exit_code?`: integer\\|null, `lines`: string[]",
    );
    expect(fieldList(z.strictObject({}))).toBe("—");
  });

  it("lists the fields of a schema with an id (emitted as a ref to its definition)", () => {
    const Named = z.object({ alias: z.string(), status: z.number().int().optional() }).meta({ id: "FieldTypesNamed" });
    expect(fieldList(Named)).toBe("`alias`: string, `status?`: integer");
    expect(fieldList(z.object({ run: Named, runs: z.array(Named) }))).toBe("`run`: object, `runs`: object[]");
  });

  it("renders draft-07 tuples, intersections and impossible values", () => {
    expect(fieldType({ type: "array", items: [{ type: "string" }, { type: "integer" }], additionalItems: false })).toBe("[string, integer]");
    expect(fieldType({ type: "array", prefixItems: [{ type: "string" }], items: { type: "number" } })).toBe("[string, ...number[]]");
    expect(fieldType({ allOf: [{ type: "object" }, { type: "object" }] })).toBe("object");
    expect(fieldType({ not: {} })).toBe("never");
    expect(fieldType({})).toBe("any");
    expect(fieldType({ type: ["string", "null"] })).toBe("string\\|null");
  });
});
