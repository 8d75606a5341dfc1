// Where the checkpoint worker's program comes from: the compiled module beside this one in dist/, or, run from the
// sources (tsx, vitest: a worker thread has no TypeScript loader), checkpoint-worker.ts bundled by esbuild once.

import { createRequire } from "node:module";

let bundled: string | null = null;

/** The worker's program: a file URL to start it from, or (from the sources) its bundled source to evaluate. */
export function checkpointWorkerProgram(): { url: URL; source: null } | { url: null; source: string } {
  const url = new URL(import.meta.url.endsWith(".ts") ? "./checkpoint-worker.ts" : "./checkpoint-worker.js", import.meta.url);
  if (!url.pathname.endsWith(".ts")) return { url, source: null };
  bundled ??= bundle(url);
  return { url: null, source: bundled };
}

function bundle(entry: URL): string {
  // Loaded here only: a server running from dist/ starts the compiled file and loads no esbuild.
  const { buildSync } = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
  const result = buildSync({
    entryPoints: [decodeURIComponent(entry.pathname)],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    write: false,
    // Type imports only, but kept out of the bundle whatever happens: the worker requires the driver by its path.
    external: ["better-sqlite3"],
    logLevel: "silent",
  });
  return result.outputFiles[0]?.text ?? "";
}
