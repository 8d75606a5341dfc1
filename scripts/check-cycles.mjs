#!/usr/bin/env node
// Fails when source files import each other in a cycle (`npm run check:cycles`, run by .ci/run).
// The graph is read from each file's import statements (the sources use relative ESM specifiers only)
// and searched with Tarjan's algorithm. Plain JavaScript: no build, no TypeScript compiler API.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "src");

function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.tsx?$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

// Every `import … from`, `export … from`, side-effect `import "…"` and `import("…")` with a relative
// specifier, type-only ones included (a cycle through types is still a cycle in the layout).
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g;

function resolveImport(from, specifier) {
  const base = join(dirname(from), specifier);
  for (const candidate of [base.replace(/\.js$/, ".ts"), base.replace(/\.js$/, ".tsx"), `${base}.ts`, join(base, "index.ts")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return null;
}

const graph = new Map();
for (const file of sources(src)) {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, "");
  const targets = new Set();
  for (const match of text.matchAll(SPECIFIER)) {
    const target = resolveImport(file, match[1]);
    if (target) targets.add(relative(root, target));
  }
  graph.set(relative(root, file), [...targets]);
}

// Tarjan's strongly connected components: every component of more than one file is a cycle.
let index = 0;
const stack = [];
const state = new Map();
const cycles = [];
function visit(v) {
  const s = { index, low: index, onStack: true };
  index++;
  state.set(v, s);
  stack.push(v);
  for (const w of graph.get(v) ?? []) {
    const t = state.get(w);
    if (!t) {
      visit(w);
      s.low = Math.min(s.low, state.get(w).low);
    } else if (t.onStack) s.low = Math.min(s.low, t.index);
  }
  if (s.low === s.index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      state.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1) cycles.push(component.sort());
  }
}
for (const v of graph.keys()) if (!state.has(v)) visit(v);

if (cycles.length === 0) {
  process.stdout.write(`no import cycles among ${graph.size} source files\n`);
} else {
  process.stderr.write(`${cycles.length} import cycle(s) among the sources; break each (move the shared part into a module both import):\n`);
  for (const c of cycles) {
    process.stderr.write(`  - ${c.map((f) => relative(root, join(root, f))).join("  ↔  ")}\n`);
  }
  process.exit(1);
}
