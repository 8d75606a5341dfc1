import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The layering rules of DESIGN §2, read from the sources' import statements (the same reading as
// scripts/check-cycles.mjs): each rule names the folders a layer may import from.
const root = fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "src");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : /\.ts$/.test(name) ? [path] : [];
  });
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g;

/** Every import of `file`: relative ones as `src/` paths (e.g. `src/store/runs.ts`), others as written (`node:fs`, `zod`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, "");
  return [...text.matchAll(SPECIFIER)].map(([, spec]) =>
    spec!.startsWith(".") ? `src/${relative(src, resolve(dirname(file), spec!)).replace(/\.js$/, ".ts")}` : spec!,
  );
}

/** `file: import` for each import of a file under `layer` that `allowed` refuses. */
function offenders(layer: string, allowed: (target: string, file: string) => boolean): string[] {
  const files = sources(join(src, layer));
  expect(files.length, `${layer} has sources`).toBeGreaterThan(0);
  return files.flatMap((file) => importsOf(file).flatMap((target) => (allowed(target, file) ? [] : [`${relative(src, file)}: ${target}`])));
}

const within = (target: string, ...folders: string[]) => folders.some((f) => target === `src/${f}` || target.startsWith(`src/${f}/`));
/** A package from node_modules (not a file of Spool's, not a Node built-in). */
const isPackage = (target: string) => !target.startsWith("src/") && !target.startsWith("node:");
const NODE = /^node:/;

describe("the layers import only what DESIGN §2 lets them", () => {
  it("protocol imports nothing of Spool outside itself and no Node built-in (it bundles for the browser)", () => {
    expect(offenders("protocol", (t) => within(t, "protocol") || (!NODE.test(t) && t === "zod"))).toEqual([]);
  });

  it("store imports only the store and the protocol", () => {
    expect(offenders("store", (t) => within(t, "store", "protocol") || isPackage(t) || NODE.test(t))).toEqual([]);
  });

  it("the migrations (the top-level migrations/, a tsc project of their own with rootDir migrations) import only kysely and each other", () => {
    expect(offenders("../migrations", (t) => t === "kysely" || t.startsWith("src/../migrations/"))).toEqual([]);
  });

  it("model imports only the model, the store and the protocol", () => {
    expect(offenders("model", (t) => within(t, "model", "store", "protocol") || isPackage(t) || NODE.test(t))).toEqual([]);
  });

  it("features call core, never store", () => {
    expect(offenders("features", (t) => !within(t, "store"))).toEqual([]);
  });

  it("the people-facing clients (ACP, MCP, the web page) import the protocol and the client, never the server", () => {
    // The settings reader (which server, which token), the logger and the version are shared with every command.
    const client = (t: string) => within(t, "protocol", "client") || within(t, "config.ts", "logger.ts", "version.ts") || isPackage(t) || NODE.test(t);
    expect(offenders("acp", (t) => within(t, "acp") || client(t))).toEqual([]);
    expect(offenders("mcp", (t) => within(t, "mcp") || client(t))).toEqual([]);
    expect(offenders("web/page", (t) => within(t, "web/page") || (within(t, "protocol", "client") && !t.endsWith("ws-transport.ts")) || isPackage(t))).toEqual(
      [],
    );
  });

  it("the CLI's client commands import the protocol and the client; only serve, runner, acp and mcp start what they host", () => {
    const hosts = new Set(["cli/serve.ts", "cli/runner.ts", "cli/acp.ts", "cli/mcp.ts", "cli/main.ts", "cli/doctor.ts"]);
    const client = (t: string, file: string) =>
      hosts.has(relative(src, file)) ||
      within(t, "cli", "protocol", "client") ||
      within(t, "config.ts", "logger.ts", "version.ts") ||
      isPackage(t) ||
      NODE.test(t);
    expect(offenders("cli", client)).toEqual([]);
  });
});
