import { z } from "zod";
import { ERRORS } from "./errors.js";
import type { MethodRegistry } from "./registry.js";

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

/** One OpenRPC content descriptor per top-level field of an object params schema. */
function contentDescriptors(schema: z.ZodType): Record<string, unknown>[] {
  const json = jsonSchema(schema, "input");
  const properties = (json.properties ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, prop]) => ({
    name,
    required: required.has(name),
    ...(typeof prop.description === "string" ? { description: prop.description } : {}),
    schema: prop,
  }));
}

/** The OpenRPC document for every registered method, generated from the same schemas that validate params. */
export function buildOpenRpcDocument(registry: MethodRegistry, info: { title: string; version: string }): Record<string, unknown> {
  const methods = [...registry.methods.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((def) => ({
      name: def.name,
      description: def.description,
      paramStructure: "by-name",
      params: contentDescriptors(def.params),
      result: { name: "result", schema: jsonSchema(def.result, "output") },
      "x-requires-initialize": def.access !== "none",
      "x-plugin": def.plugin,
    }));
  const notifications = [...registry.notifications.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((def) => ({
      name: def.name,
      description: def.description,
      direction: def.direction,
      params: contentDescriptors(def.params),
      ...(def.reply ? { "x-reply": jsonSchema(def.reply, "output") } : {}),
      "x-plugin": def.plugin,
    }));
  const errors = Object.entries(ERRORS).map(([name, e]) => ({ code: e.code, message: name, data: { code: name }, description: e.summary }));
  return {
    openrpc: "1.3.2",
    info: { ...info, description: "Spool JSON-RPC agent runtime" },
    methods,
    components: { errors: Object.fromEntries(errors.map((e) => [e.message, e])) },
    "x-notifications": notifications,
  };
}
