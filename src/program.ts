import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** How to run a program module: its compiled file, or its source bundled into one piece of JavaScript. */
export type Program = { file: string; source: null } | { file: null; source: string };

const bundled = new Map<string, string>();

/**
 * A TypeScript module of src/ run as a program of its own (a process, a worker thread): `name` beside the module at
 * `base` (its `import.meta.url`). From dist/, the compiled file; from the sources (tsx, vitest), where a plain `node`
 * or a worker thread has no TypeScript loader, the module bundled by esbuild (installed with tsx) once, `external`
 * packages left to the program to load. esbuild is loaded here only: a server running from dist/ never loads it.
 */
export function program(base: string, name: string, external: readonly string[] = []): Program {
  const url = new URL(`./${name}${base.endsWith(".ts") ? ".ts" : ".js"}`, base);
  const file = fileURLToPath(url);
  if (!file.endsWith(".ts")) return { file, source: null };
  let source = bundled.get(file);
  if (source === undefined) {
    const { buildSync } = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
    const built = buildSync({
      entryPoints: [file],
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node20",
      write: false,
      external: [...external],
      logLevel: "silent",
    });
    source = built.outputFiles[0]?.text ?? "";
    bundled.set(file, source);
  }
  return { file: null, source };
}

/** A program's first arguments to `node`: its file, or `-e` and its source. */
export function programArgs(p: Program): string[] {
  return p.file !== null ? [p.file] : ["-e", p.source];
}
