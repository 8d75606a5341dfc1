import { readFileSync } from "node:fs";
import type { z } from "zod";
import { nearest } from "../protocol/nearest.js";
import { SANDBOX_HIDE_REMOVED } from "../protocol/sandbox.js";
import { ConfigFileSchema, LimitsSchema } from "./schema.js";

const MILLISECONDS = "a whole number of milliseconds, 0 or more";

/** What each config.json setting must hold, in words, for error messages; `key[]` is an item of a list, `key.*` a value of an object. */
const MUST: Record<string, string> = {
  host: "an address or host name (a string)",
  port: "an integer 0-65535",
  allowedOrigins: "a list of origins",
  "allowedOrigins[]": 'an origin (a string such as "http://localhost:5173")',
  plugins: "a list of plugin paths or package names",
  "plugins[]": "a plugin path (./x.ts, /abs/x.js) or package name",
  failurePatterns: "a list of regular expressions",
  "failurePatterns[]": "a regular expression",
  limits: "an object of limits",
  modelTimeoutMs: MILLISECONDS,
  modelMaxTokens: "an object of model alias → max_tokens",
  "modelMaxTokens.*": "a positive integer",
  runnerGraceMs: MILLISECONDS,
  localRunner: "true or false",
  commandTimeoutMs: MILLISECONDS,
  backgroundTimeoutMs: MILLISECONDS,
  decisionTimeoutMs: MILLISECONDS,
  modelInput: '"accepted" or "off"',
  livenessTimeoutMs: MILLISECONDS,
  scavengeEveryMb: "a whole number of MB, 0 or more",
  commandEnv: "a list of variable names or patterns with *",
  "commandEnv[]": "a variable name or a pattern with *",
  toolYieldMs: MILLISECONDS,
  toolKillWaitMs: MILLISECONDS,
  outputTokens: "a positive integer",
  maxSteps: "a whole number of model calls, 0 or more",
  sandbox: '"auto", "workspace-write" or "full"',
  sandboxNetwork: "true or false",
  sandboxFullAcceptors: 'a list of who may accept a command without a sandbox ("admin", "person", "principal:NAME")',
  "sandboxFullAcceptors[]": '"admin" (every unscoped admin), "person" (every unscoped person and admin) or "principal:NAME"',
  egress: 'an object {"allow": [hosts], "projects": {"name": [hosts]}, "hosts": {"name": "address"}}',
  "egress.allow": 'a list of hosts ("registry.npmjs.org", "*.github.com", "example.org:8443", "10.0.0.5")',
  sandboxView: 'an object {"read": [paths], "write": [paths], "projects": {"name": {"read": [paths], "write": [paths]}}}',
  "sandboxView.read[]": "an absolute path or one starting with ~/",
  "sandboxView.write[]": "an absolute path or one starting with ~/",
  "sandboxView.projects.*.read[]": "an absolute path or one starting with ~/",
  "sandboxView.projects.*.write[]": "an absolute path or one starting with ~/",
  pools: 'an object of pool name → {"labels": {"key": "value"}, "principals": ["name"]}',
  "pools.*": 'a pool: {"labels": {"key": "value"}} and, optionally, "principals": ["name", …]',
  demoModel: "true or false",
  ...Object.fromEntries(
    Object.entries(LimitsSchema.parse({})).map(([key, value]) => [`limits.${key}`, typeof value === "boolean" ? "true or false" : "a positive integer"]),
  ),
};

/** Settings config.json no longer has, and what replaced each. */
const REMOVED: Record<string, string> = { sandboxHide: SANDBOX_HIDE_REMOVED };

/** `limits.maxBatchSize`, `plugins[2]`. */
function settingName(path: readonly PropertyKey[]): string {
  return path.map((part, i) => (typeof part === "number" ? `[${part}]` : `${i > 0 ? "." : ""}${String(part)}`)).join("");
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((at, part) => (at !== null && typeof at === "object" ? (at as Record<PropertyKey, unknown>)[part] : undefined), value);
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One line per problem, each naming the file and the setting: `/x/config.json: "port" must be an integer 0-65535, got "abc"`. */
function configProblems(file: string, raw: unknown, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const where = settingName(issue.path);
      const known = where === "limits" ? Object.keys(LimitsSchema.shape) : Object.keys(ConfigFileSchema.shape);
      const names = issue.keys.map((k) => `"${where ? `${where}.` : ""}${k}"`).join(", ");
      const near = issue.keys.length === 1 ? nearest(issue.keys[0]!, known) : null;
      const hint = near ? ` — did you mean "${where ? `${where}.` : ""}${near}"?` : "";
      return `${file}: ${names} ${issue.keys.length > 1 ? "are not settings" : "is not a setting"}${hint} (known${where ? ` in ${where}` : ""}: ${known.join(", ")})`;
    }
    const name = settingName(issue.path);
    const pattern = settingName(
      issue.path.map((part, i) =>
        typeof part === "number" ? 0 : (i === 1 && issue.path[0] === "modelMaxTokens") || (i > 0 && issue.path[i - 1] === "projects") ? "*" : part,
      ),
    ).replace(/\[0\]/g, "[]");
    const must = MUST[pattern];
    const detail = issue.code === "custom" && issue.message ? ` (${issue.message})` : "";
    return `${file}: "${name}" must be ${must ?? issue.message}${detail}, got ${shown(valueAt(raw, issue.path))}`;
  });
}

/** Reads config.json: absent is {}, anything wrong is an error naming the file and the setting. */
export function readConfigFile(file: string): z.output<typeof ConfigFileSchema> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new Error(`${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const at = /at position (\d+)/.exec(message);
    const before = at ? text.slice(0, Number(at[1])).split("\n") : null;
    const where = before ? ` (line ${before.length}, column ${before.at(-1)!.length + 1})` : "";
    throw new Error(`${file}: not valid JSON: ${message}${where}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${file}: must hold a JSON object of settings, e.g. {"port": 7420}, got ${shown(raw)}`);
  }
  // A setting that was removed: said so, with what replaced it (never silently ignored, never "not a setting").
  const removed = Object.keys(raw).flatMap((key) => (Object.hasOwn(REMOVED, key) ? [`${file}: ${REMOVED[key]}`] : []));
  if (removed.length > 0) throw new Error(removed.join("\n"));
  const parsed = ConfigFileSchema.safeParse(raw);
  if (!parsed.success) throw new Error(configProblems(file, raw, parsed.error.issues).join("\n"));
  return parsed.data;
}
