import { readFileSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { ERRORS } from "../rpc/errors.js";
import type { MethodRegistry } from "../rpc/registry.js";
import { FILTER_DOCS, HOOK_DOCS } from "../plugins/hooks.js";
import { LimitsSchema } from "../config.js";

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

function fieldList(schema: z.ZodType): string {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as {
    properties?: Record<string, { type?: unknown; enum?: unknown[]; anyOf?: unknown[] }>;
    required?: string[];
  };
  const required = new Set(json.required ?? []);
  const fields = Object.entries(json.properties ?? {}).map(([name, prop]) => {
    const type = prop.enum ? prop.enum.map((v) => JSON.stringify(v)).join("\\|") : Array.isArray(prop.type) ? prop.type.join("\\|") : String(prop.type ?? "any");
    return `\`${name}${required.has(name) ? "" : "?"}\`: ${type}`;
  });
  return fields.length ? fields.join(", ") : "—";
}

export function methodTable(registry: MethodRegistry): string {
  const rows = [...registry.methods.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((m) => `| \`${m.name}\` | ${fieldList(m.params)} | ${fieldList(m.result)} | ${m.access === "none" ? "no" : "yes"} | ${cell(m.description)} |`);
  return ["| method | params | result | needs initialize | description |", "|---|---|---|---|---|", ...rows].join("\n");
}

export function notificationTable(registry: MethodRegistry): string {
  const rows = [...registry.notifications.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((n) => {
      const direction = n.direction === "server" ? "server → client" : "client → server";
      const reply = n.reply ? `request; the client replies ${fieldList(n.reply)}` : "notification";
      return `| \`${n.name}\` | ${direction} | ${reply} | ${fieldList(n.params)} | ${cell(n.description)} |`;
    });
  return ["| message | direction | kind | params | description |", "|---|---|---|---|---|", ...rows].join("\n");
}

export function errorTable(): string {
  const rows = Object.entries(ERRORS).map(([name, e]) => `| ${e.code} | \`${name}\` | ${e.area} | ${cell(e.summary)} |`);
  return ["| code | `data.code` | area | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

export function hookTable(): string {
  const hooks = Object.entries(HOOK_DOCS).map(([name, doc]) => `| hook | \`${name}\` | ${cell(doc)} |`);
  const filters = Object.entries(FILTER_DOCS).map(([name, doc]) => `| filter | \`${name}\` | ${cell(doc)} |`);
  return ["| kind | name | when / what |", "|---|---|---|", ...hooks, ...filters].join("\n");
}

export function limitsTable(): string {
  const defaults = LimitsSchema.parse({});
  const json = z.toJSONSchema(LimitsSchema, { io: "input" }) as { properties: Record<string, { description?: string }> };
  const rows = Object.entries(defaults).map(([name, value]) => `| \`limits.${name}\` | ${value} | ${cell(json.properties[name]?.description ?? "")} |`);
  return ["| setting (config.json) | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

/** Replaces the text between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`. */
export function fillGenerated(text: string, sections: Record<string, string>): string {
  let out = text;
  for (const [name, body] of Object.entries(sections)) {
    const pattern = new RegExp(`(<!-- generated:${name} -->)[\\s\\S]*?(<!-- /generated:${name} -->)`);
    if (!pattern.test(out)) throw new Error(`Missing generated section "${name}"`);
    out = out.replace(pattern, (_m, open: string, close: string) => `${open}\n${body}\n${close}`);
  }
  return out;
}

export function docSections(registry: MethodRegistry): Record<string, Record<string, string>> {
  return {
    "SPEC.md": {
      methods: methodTable(registry),
      notifications: notificationTable(registry),
      errors: errorTable(),
      limits: limitsTable(),
    },
    "PLUGINS.md": { hooks: hookTable() },
  };
}

export function regenerate(file: string, sections: Record<string, string>, write: boolean): boolean {
  const before = readFileSync(file, "utf8");
  const after = fillGenerated(before, sections);
  if (write && after !== before) writeFileSync(file, after);
  return after === before;
}
