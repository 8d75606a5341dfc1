import { z } from "zod";
import { ERRORS } from "./errors.js";
import type { MethodRegistry } from "./registry.js";

/**
 * The OpenRPC document `rpc.discover` returns, generated from the zod schemas
 * that validate params. It must stay valid against the OpenRPC 1.3 meta-schema
 * (test/rpc/openrpc.test.ts checks it with @open-rpc/schema-utils-js), which
 * means:
 *
 * - Schema Objects are JSON Schema draft-07 (zod's `target: "draft-07"`), so
 *   tuples are `items: [..]` + `additionalItems`, not 2020-12 `prefixItems`.
 * - Shared, named (`.meta({ id })`) and recursive schemas, which zod emits as
 *   `definitions` and `#/definitions/…` / `#` refs local to one schema, are
 *   moved to `components.schemas` and their refs rewritten to
 *   `#/components/schemas/…`, so they still resolve once a property schema is
 *   lifted out into a content descriptor.
 * - `$schema`, `$id` and `id` are dropped from every schema: a nested `$id`
 *   would change the base URI the refs resolve against.
 * - Error objects allow only `code`, `message` and `data` (no `description`,
 *   no `x-` extensions): the summary is the `message`, and `data` carries the
 *   stable string code (`data.code`) and the area.
 * - `x-` extensions are used only where the spec allows Specification
 *   Extensions: the document root (`x-notifications`) and Method Objects
 *   (`x-requires-initialize`, `x-role`, `x-own-runs`, `x-plugin`, `x-binary-frame`). Inside `x-notifications` the shape is
 *   free; its entries mirror Method Objects.
 */

type JsonSchema = Record<string, unknown>;

const COMPONENTS = "#/components/schemas/";

/** Keywords whose value is one schema. */
const SCHEMA_KEYWORDS = [
  "additionalItems",
  "additionalProperties",
  "contains",
  "propertyNames",
  "not",
  "if",
  "then",
  "else",
  "unevaluatedItems",
  "unevaluatedProperties",
];
/** Keywords whose value is an array of schemas. */
const SCHEMA_ARRAY_KEYWORDS = ["allOf", "anyOf", "oneOf", "prefixItems"];
/** Keywords whose value maps names to schemas. */
const SCHEMA_MAP_KEYWORDS = ["properties", "patternProperties", "definitions", "$defs", "dependentSchemas"];

const isObject = (value: unknown): value is JsonSchema => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Rebuilds a schema (boolean schemas pass through), applying `node` to every
 * schema object bottom-up. Only schema positions are visited: a property
 * called `$ref` or `id`, or a `default`/`const`/`enum` value, is data.
 */
function mapSchema(schema: unknown, node: (schema: JsonSchema) => JsonSchema): unknown {
  if (!isObject(schema)) return schema;
  const out: JsonSchema = { ...schema };
  const each = (value: unknown) => mapSchema(value, node);
  for (const key of SCHEMA_KEYWORDS) if (key in out) out[key] = each(out[key]);
  for (const key of SCHEMA_ARRAY_KEYWORDS) if (Array.isArray(out[key])) out[key] = (out[key] as unknown[]).map(each);
  if ("items" in out) out.items = Array.isArray(out.items) ? out.items.map(each) : each(out.items);
  for (const key of [...SCHEMA_MAP_KEYWORDS, "dependencies"]) {
    const map = out[key];
    if (!isObject(map)) continue;
    // `dependencies` values may be string arrays (property dependencies) rather than schemas.
    out[key] = Object.fromEntries(Object.entries(map).map(([name, value]) => [name, Array.isArray(value) ? value : each(value)]));
  }
  return node(out);
}

/** Component names end up in JSON pointers (`#/components/schemas/NAME`): keep them to safe characters. */
const componentName = (text: string) => text.replace(/[^A-Za-z0-9_.-]+/g, "_");

/**
 * Converts zod schemas to OpenRPC Schema Objects, collecting the definitions
 * they share into `components.schemas`.
 */
class SchemaCollector {
  readonly components: Record<string, JsonSchema> = {};

  /**
   * `hint` names what the schema describes (`run/create.params`); it names the
   * components zod did not name itself (recursive and reused anonymous schemas).
   */
  convert(schema: z.ZodType, io: "input" | "output", hint: string): JsonSchema {
    const json = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-07" }) as JsonSchema;
    const defs: Record<string, unknown> = { ...(isObject(json.definitions) ? json.definitions : {}), ...(isObject(json.$defs) ? json.$defs : {}) };
    const root: JsonSchema = { ...json };
    delete root.definitions;
    delete root.$defs;

    // Pick a component name for every definition (and for the root, if something refers to it).
    const names = new Map<string, string>();
    for (const key of Object.keys(defs)) {
      names.set(key, /^__schema\d+$/.test(key) ? componentName(`${hint}.${key.slice(2)}`) : componentName(key));
    }
    let rootName: string | undefined;
    const rewriteRef = (ref: string): string => {
      const local = /^#\/(?:definitions|\$defs)\/(.+)$/.exec(ref);
      if (local) {
        const key = decodeURIComponent(local[1]!).replace(/~1/g, "/").replace(/~0/g, "~");
        const name = names.get(key);
        if (name) return `${COMPONENTS}${name}`;
      }
      if (ref === "#" || ref.startsWith("#/")) {
        rootName ??= componentName(hint);
        return `${COMPONENTS}${rootName}${ref.slice(1)}`;
      }
      return ref;
    };
    const clean = (value: unknown) =>
      mapSchema(value, (node) => {
        const out = { ...node };
        delete out.$schema;
        delete out.$id;
        if (typeof out.id === "string") delete out.id;
        if (typeof out.$ref === "string") out.$ref = rewriteRef(out.$ref);
        return out;
      }) as JsonSchema | boolean;

    // A name already taken by a different schema (the same id seen as input and as output, say) gets a suffix.
    // Clean once with the provisional names to compare, settle the names, then clean again with the final ones.
    const taken = new Set<string>();
    for (const [key, def] of Object.entries(defs)) {
      const name = this.#freeName(names.get(key)!, clean(def), io, taken);
      taken.add(name);
      names.set(key, name);
    }
    for (const [key, def] of Object.entries(defs)) this.components[names.get(key)!] = clean(def) as JsonSchema;

    let out = clean(root);
    if (typeof out === "boolean") out = out ? {} : { not: {} };
    if (rootName) this.components[rootName] = out;
    // A named root comes out as a bare ref to its definition: inline it, so the schema shows its fields.
    const target =
      typeof out.$ref === "string" && Object.keys(out).length === 1 && out.$ref.startsWith(COMPONENTS)
        ? this.components[out.$ref.slice(COMPONENTS.length)]
        : undefined;
    return isObject(target) ? { ...target } : out;
  }

  #freeName(name: string, schema: unknown, io: "input" | "output", taken: Set<string>): string {
    const free = (candidate: string) =>
      !taken.has(candidate) && (!(candidate in this.components) || JSON.stringify(this.components[candidate]) === JSON.stringify(schema));
    if (free(name)) return name;
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? `${name}.${io}` : `${name}.${io}_${n}`;
      if (free(candidate)) return candidate;
    }
  }

  /** One OpenRPC content descriptor per top-level field of an object params schema. */
  contentDescriptors(schema: z.ZodType, hint: string): JsonSchema[] {
    const { properties, required } = objectShape(this.convert(schema, "input", hint), this.components);
    return Object.entries(properties).map(([name, prop]) => ({
      name,
      ...(isObject(prop) && typeof prop.description === "string" ? { description: prop.description } : {}),
      required: required.has(name),
      schema: prop,
    }));
  }
}

/**
 * The fields of an object schema: its `properties`, or those of its `allOf`
 * parts, or, for a union of objects, every branch's fields (required only when
 * required in every branch).
 */
function objectShape(schema: unknown, components: Record<string, JsonSchema>, depth = 0): { properties: Record<string, unknown>; required: Set<string> } {
  const none = { properties: {}, required: new Set<string>() };
  if (!isObject(schema) || depth > 8) return none;
  if (typeof schema.$ref === "string" && schema.$ref.startsWith(COMPONENTS)) {
    return objectShape(components[schema.$ref.slice(COMPONENTS.length)], components, depth + 1);
  }
  if (isObject(schema.properties)) {
    return { properties: { ...schema.properties }, required: new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []) };
  }
  if (Array.isArray(schema.allOf)) {
    const parts = schema.allOf.map((part) => objectShape(part, components, depth + 1));
    return { properties: Object.assign({}, ...parts.map((p) => p.properties)), required: new Set(parts.flatMap((p) => [...p.required])) };
  }
  const branches = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined;
  if (branches) {
    const parts = branches.map((branch) => objectShape(branch, components, depth + 1));
    const properties: Record<string, unknown> = {};
    for (const part of parts) {
      for (const [name, prop] of Object.entries(part.properties)) {
        const seen = properties[name];
        properties[name] =
          seen === undefined || JSON.stringify(seen) === JSON.stringify(prop)
            ? prop
            : { anyOf: [...(isObject(seen) && Array.isArray(seen.anyOf) && !("type" in seen) ? seen.anyOf : [seen]), prop] };
      }
    }
    const required = new Set(Object.keys(properties).filter((name) => parts.every((p) => p.required.has(name))));
    return { properties, required };
  }
  return none;
}

/** The OpenRPC document for every registered method, generated from the same schemas that validate params. */
export function buildOpenRpcDocument(registry: MethodRegistry, info: { title: string; version: string }): Record<string, unknown> {
  const schemas = new SchemaCollector();
  const methods = [...registry.methods.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((def) => ({
      name: def.name,
      description: def.description,
      paramStructure: "by-name",
      params: schemas.contentDescriptors(def.params, `${def.name}.params`),
      result: { name: "result", schema: schemas.convert(def.result, "output", `${def.name}.result`) },
      "x-requires-initialize": def.access !== "none",
      // The least role a caller needs (SPEC: Trust); a scoped credential is held to its projects on top of it.
      "x-role": def.role ?? "admin",
      // Below person, a caller acts only in the runs its own principal created.
      ...(def.ownRuns ? { "x-own-runs": true } : {}),
      "x-plugin": def.plugin,
      // Takes a binary frame over WebSocket, its raw bytes filling this params field (SPEC §1 Binary frames).
      ...(def.bytes ? { "x-binary-frame": { field: def.bytes } } : {}),
    }));
  const notifications = [...registry.notifications.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((def) => ({
      name: def.name,
      description: def.description,
      direction: def.direction,
      params: schemas.contentDescriptors(def.params, `${def.name}.params`),
      // The reply is what the client sends back: its input shape.
      ...(def.reply ? { "x-reply": schemas.convert(def.reply, "input", `${def.name}.reply`) } : {}),
      "x-plugin": def.plugin,
    }));
  // Error Objects allow only code, message and data: the summary is the message, data carries the stable string code.
  const errors = Object.fromEntries(
    Object.entries(ERRORS).map(([name, e]) => [name, { code: e.code, message: e.summary, data: { code: name, area: e.area } }]),
  );
  const components: Record<string, unknown> = { errors };
  if (Object.keys(schemas.components).length > 0) {
    components.schemas = Object.fromEntries(Object.entries(schemas.components).sort(([a], [b]) => a.localeCompare(b)));
  }
  return {
    openrpc: "1.3.2",
    info: { ...info, description: "Spool JSON-RPC agent runtime" },
    methods,
    components,
    "x-notifications": notifications,
  };
}
