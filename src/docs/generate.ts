import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { exitCodesTable } from "../cli/exit-codes.js";
import { LimitsSchema, PER_PRINCIPAL_LIMITS } from "../config/config.js";
import { FILTER_DOCS, HOOK_DOCS } from "../core/hooks.js";
import type { NotificationDescriptor, RequestDescriptor } from "../protocol/define.js";
import { AUDIT_ACTIONS, AUDIT_DETAILS } from "../protocol/methods/audit.js";
import { METHODS } from "../protocol/methods/index.js";
import { NOTIFICATIONS } from "../protocol/notifications.js";
import { ROLE_SUMMARY, ROLES, TRANSPORTS } from "../protocol/roles.js";
import { ERRORS } from "../rpc/errors.js";
import { LAYERS } from "./layers.js";

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

type JsonSchema = Record<string, unknown>;

const isObject = (value: unknown): value is JsonSchema => typeof value === "object" && value !== null && !Array.isArray(value);
const unique = (items: string[]) => [...new Set(items)];

/**
 * The alternatives a JSON Schema (as zod emits it) allows, rendered for a
 * table: `integer`, `string[]`, `"a"` for enum members and consts, `object`
 * for objects and records, `null`. `root` resolves `$ref`s; `seen` stops
 * recursion.
 */
function typeAlternatives(schema: unknown, root: JsonSchema, seen: ReadonlySet<string> = new Set()): string[] {
  if (schema === true) return ["any"];
  if (schema === false) return ["never"];
  if (!isObject(schema)) return ["any"];
  if (typeof schema.$ref === "string") {
    const ref = schema.$ref;
    if (seen.has(ref)) return ["object"];
    const match = /^#(?:\/(\$defs|definitions)\/(.+))?$/.exec(ref);
    const defs = match?.[1] ? root[match[1]] : undefined;
    const target = !match ? undefined : match[1] ? (isObject(defs) ? defs[match[2]!] : undefined) : root;
    return target === undefined ? ["any"] : typeAlternatives(target, root, new Set([...seen, ref]));
  }
  if ("const" in schema) return [JSON.stringify(schema.const)];
  if (Array.isArray(schema.enum)) return schema.enum.map((value) => JSON.stringify(value));
  const union = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined;
  if (union) return unique(union.flatMap((branch) => typeAlternatives(branch, root, seen)));
  if (Array.isArray(schema.allOf)) {
    const parts = schema.allOf.map((part) => typeAlternatives(part, root, seen));
    const distinct = unique(parts.map((alternatives) => alternatives.join("|")));
    if (distinct.length === 1) return parts[0]!;
    return [parts.map((alternatives) => (alternatives.length > 1 ? `(${alternatives.join("|")})` : alternatives[0])).join("&")];
  }
  if (isObject(schema.not) && Object.keys(schema.not).length === 0) return ["never"];
  const types = Array.isArray(schema.type) ? (schema.type as unknown[]) : schema.type === undefined ? [] : [schema.type];
  if (types.length === 0) return ["any"];
  return unique(
    types.map((type) => {
      if (type !== "array") return String(type);
      const one = (item: unknown) => typeAlternatives(item, root, seen).join("|");
      if (Array.isArray(schema.prefixItems) || Array.isArray(schema.items)) {
        // A tuple: 2020-12 `prefixItems` (+ `items` for the rest), or draft-07 `items: [..]` (+ `additionalItems`).
        const items = (Array.isArray(schema.prefixItems) ? schema.prefixItems : schema.items) as unknown[];
        const rest = Array.isArray(schema.prefixItems) ? schema.items : schema.additionalItems;
        const restType = rest === undefined || rest === false ? [] : [`...${one(rest).includes("|") ? `(${one(rest)})` : one(rest)}[]`];
        return `[${[...items.map(one), ...restType].join(", ")}]`;
      }
      const item = schema.items === undefined ? ["any"] : typeAlternatives(schema.items, root, seen);
      return item.length === 1 ? `${item[0]}[]` : `(${item.join("|")})[]`;
    }),
  );
}

/** A field's type for a table cell: alternatives joined with an escaped `\|`. */
export function fieldType(schema: unknown, root: JsonSchema = isObject(schema) ? schema : {}): string {
  return typeAlternatives(schema, root).join("|").replace(/\|/g, "\\|");
}

/** `name`: type for each top-level field of an object schema (`name?` when optional), for SPEC.md's tables. */
export function fieldList(schema: z.ZodType): string {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  // A schema with an id comes out as a ref to its definition.
  const object = typeof json.$ref === "string" && !isObject(json.properties) ? resolveRoot(json) : json;
  const required = new Set(Array.isArray(object.required) ? (object.required as string[]) : []);
  const properties = isObject(object.properties) ? object.properties : {};
  const fields = Object.entries(properties).map(([name, prop]) => `\`${name}${required.has(name) ? "" : "?"}\`: ${fieldType(prop, json)}`);
  return fields.length ? fields.join(", ") : "—";
}

function resolveRoot(json: JsonSchema): JsonSchema {
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(json.$ref as string);
  const defs = match ? json[match[1]!] : undefined;
  const target = match && isObject(defs) ? defs[match[2]!] : undefined;
  return isObject(target) ? target : json;
}

/** Requests and notifications with their schemas: the protocol's descriptors, or a server's registry (plugins' methods too). */
export interface DescribedApi {
  methods: ReadonlyMap<string, RequestDescriptor>;
  notifications: ReadonlyMap<string, NotificationDescriptor>;
}

/** The protocol's own requests and notifications, read from src/protocol without starting a server. */
export function protocolApi(): DescribedApi {
  return {
    methods: new Map(METHODS.map((m): [string, RequestDescriptor] => [m.name, m])),
    notifications: new Map(NOTIFICATIONS.map((n): [string, NotificationDescriptor] => [n.name, n])),
  };
}

export function methodTable(api: DescribedApi): string {
  const rows = [...api.methods.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map(
      (m) =>
        `| \`${m.name}\` | ${fieldList(m.params)} | ${fieldList(m.result)} | ${m.access === "none" ? "no" : "yes"} | ${roleCell(m)} | ${cell(m.description)} |`,
    );
  return ["| method | params | result | needs initialize | least role | description |", "|---|---|---|---|---|---|", ...rows].join("\n");
}

const roleCell = (m: RequestDescriptor) => `${m.role}${m.ownRuns ? " (own runs; person: any)" : ""}`;

/** Each role: what it may do, and the methods it is the least role of (every role above may call them too). */
export function roleTable(api: DescribedApi): string {
  const rows = ROLES.map((role) => {
    const own = [...api.methods.values()].filter((m) => m.role === role).map((m) => `\`${m.name}\`${m.ownRuns ? "\u00b9" : ""}`);
    return `| \`${role}\` | ${cell(ROLE_SUMMARY[role])} | ${own.sort().join(", ") || "—"} |`;
  });
  return ["| role | may | methods it is the least role of |", "|---|---|---|", ...rows].join("\n");
}

export function notificationTable(api: DescribedApi): string {
  const rows = [...api.notifications.values()]
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

/** What a per-principal bound without a schema description bounds. */
const PER_PRINCIPAL_WORDS: Partial<Record<(typeof PER_PRINCIPAL_LIMITS)[number], string>> = {
  maxCodesPerPrincipal: "Sign-in codes (spool open) one principal may have waiting, with the credentials minted under it; minting another spends their oldest",
  maxDevicesPerPrincipal:
    "Paired devices one principal may have, with the credentials minted under it; pairing another unpairs their device used longest ago. A revoked or expired credential's devices count for nothing",
  maxConnectionsPerPrincipal:
    "Connections one principal may have open (its credentials', those minted under it and their paired devices', every transport); one more is refused with HTTP 429 (the home's credential: the server-wide maxConnections only, and homeReserve past it)",
};

/** Every per-principal bound (PER_PRINCIPAL_LIMITS) with its default, in one place. */
export function perPrincipalTable(): string {
  const defaults = LimitsSchema.parse({}) as Record<string, unknown>;
  const json = z.toJSONSchema(LimitsSchema, { io: "input" }) as { properties: Record<string, { description?: string }> };
  const rows = PER_PRINCIPAL_LIMITS.map(
    (name) => `| \`limits.${name}\` | ${defaults[name]} | ${cell(json.properties[name]?.description ?? PER_PRINCIPAL_WORDS[name] ?? "")} |`,
  );
  return ["| bound (config.json) | default | what it bounds |", "|---|---|---|", ...rows].join("\n");
}

/** The audit trail's actions (src/protocol/methods/audit.ts), each with what it records and its `detail`'s fields. */
export function auditTable(): string {
  const rows = AUDIT_ACTIONS.map((action) => {
    const schema = AUDIT_DETAILS[action];
    return `| \`${action}\` | ${cell(schema.description ?? "")} | ${fieldList(schema)} |`;
  });
  return ["| action | the act | `detail` |", "|---|---|---|", ...rows].join("\n");
}

/** The actions in one line, and the transports the server records (for the trust section). */
export function auditActionList(): string {
  const code = (names: readonly string[]) => names.map((name) => `\`${name}\``).join(", ");
  return `Actions: ${code(AUDIT_ACTIONS)}. Transports: ${code(TRANSPORTS)}.`;
}

/** The layout of src/ (src/docs/layers.ts): each row's folders and files, what they hold, and what they may import. */
export function layoutTable(): string {
  const code = (names: readonly string[]) => names.map((name) => `\`${name}\``).join(", ");
  const rows = LAYERS.map((layer) => {
    const spool = layer.imports.length > 0 ? code(layer.imports) : "nothing of Spool";
    const except = layer.except ? ` (not ${code(layer.except)})` : "";
    const packages = layer.packages === "any" ? "" : layer.packages.length === 0 ? "; no package" : `; packages: ${code(layer.packages)} only`;
    const node = layer.node ? "" : "; no Node built-ins";
    const never = (layer.never ?? []).map((n) => `; never \`${n.name}\` (${n.why})`).join("");
    return `| ${code(layer.paths.map((path) => `src/${path}`))} | ${cell(layer.purpose)} | ${cell(`${spool}${except}${packages}${node}${never}`)} |`;
  });
  return ["| folder or file | what it holds | may import, besides itself |", "|---|---|---|", ...rows].join("\n");
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

/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (title: string) =>
  title
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");

/** A § number's place in the order: 2 < 2a < 2b < 3 < 11a < 12. */
const sectionKey = (number: string) => {
  const [, digits = "0", letter = ""] = /^(\d+)([a-z]?)$/.exec(number) ?? [];
  return Number(digits) * 100 + (letter ? letter.charCodeAt(0) - 96 : 0);
};

/** Files of docs/spec/ that open with a `###`: they continue the section named here. */
const CONTINUES: Readonly<Record<string, string>> = { "runners.md": "7" };

/**
 * SPEC.md's index: every `## §N.` section of docs/spec/*.md in § order, each with its `###` parts, linked; a file
 * opening with a `###` (CONTINUES) is listed under the section it continues. Generated, so a new heading is indexed.
 */
export function specIndex(root: string): string {
  type Part = { key: number; lines: string[] };
  const parts: Part[] = [];
  const dir = join(root, "docs", "spec");
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith(".md"))
    .sort()) {
    const file = `docs/spec/${name}`;
    let current: Part | null = null;
    for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
      const top = /^## (\d+[a-z]?)\. (.+)$/.exec(line);
      const sub = /^### (.+)$/.exec(line);
      if (top) {
        current = { key: sectionKey(top[1]!), lines: [`- [§${top[1]}. ${top[2]}](${file}#${anchor(`${top[1]}. ${top[2]}`)}) — \`${file}\``] };
        parts.push(current);
      } else if (sub) {
        const entry = `[${sub[1]}](${file}#${anchor(sub[1]!)})`;
        if (current) current.lines.push(`  - ${entry}`);
        else {
          const parent = CONTINUES[name];
          if (!parent) throw new Error(`${file} opens with a ### heading: name the section it continues in CONTINUES (src/docs/generate.ts)`);
          current = { key: sectionKey(parent) + 0.5, lines: [`  - ${entry} — \`${file}\``] };
          parts.push(current);
        }
      }
    }
  }
  return parts
    .sort((a, b) => a.key - b.key)
    .flatMap((p) => p.lines)
    .join("\n");
}

export function docSections(api: DescribedApi = protocolApi(), root?: string): Record<string, Record<string, string>> {
  return {
    "SPEC.md": {
      ...(root ? { "spec-index": specIndex(root) } : {}),
      methods: methodTable(api),
      roles: roleTable(api),
      notifications: notificationTable(api),
      errors: errorTable(),
      limits: limitsTable(),
      "per-principal": perPrincipalTable(),
      "audit-actions": auditTable(),
      "audit-action-list": auditActionList(),
      layout: layoutTable(),
    },
    "PLUGINS.md": { hooks: hookTable() },
    "README.md": { "exit-codes": exitCodesTable() },
  };
}

/** The documents that may hold generated parts: the top-level ones and everything under docs/. */
export function docFiles(root: string): string[] {
  const under = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? under(`${dir}/${e.name}`) : e.name.endsWith(".md") ? [`${dir}/${e.name}`] : []))
      .sort();
  const top = readdirSync(root)
    .filter((name) => name.endsWith(".md"))
    .sort();
  return [...top, ...(readdirSync(root).includes("docs") ? under("docs") : [])];
}

/**
 * `docSections` by the file that holds each part's `<!-- generated:NAME -->` marker now (SPEC.md's parts live in
 * docs/spec/), so a part follows its section wherever the documents put it. A part no file holds stays under the
 * file first named, where `fillGenerated` reports it missing.
 */
export function locateSections(root: string, bySource: Record<string, Record<string, string>>): Record<string, Record<string, string>> {
  const texts = new Map(docFiles(root).map((file) => [file, readFileSync(join(root, file), "utf8")]));
  const out: Record<string, Record<string, string>> = {};
  for (const [source, sections] of Object.entries(bySource)) {
    for (const [name, body] of Object.entries(sections)) {
      const marker = `<!-- generated:${name} -->`;
      const holder = texts.get(source)?.includes(marker) ? source : ([...texts].find(([, text]) => text.includes(marker))?.[0] ?? source);
      out[holder] = { ...out[holder], [name]: body };
    }
  }
  return out;
}

export function regenerate(file: string, sections: Record<string, string>, write: boolean): boolean {
  const before = readFileSync(file, "utf8");
  const after = fillGenerated(before, sections);
  if (write && after !== before) writeFileSync(file, after);
  return after === before;
}
