#!/usr/bin/env -S MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=131072 node --max-semi-space-size=2 --no-concurrent-array-buffer-sweeping
// The spool CLI. It runs the compiled JavaScript in dist/ when dist/ is a build of the sources present (its stamp,
// written by `npm run build` and by `prepare` on npm install / npm ci, matches src/'s file sizes and modification
// times), else src/ through tsx's loader, so an edited source never runs stale code. SPOOL_FROM_SOURCE=1 runs the
// sources anyway. The npm package ships dist/ without src/ (package.json "files"): there dist/ is what runs. Compiled, `spool serve` needs ~55 MB less memory (no loader thread, no esbuild process).
// From dist/ it runs the CLI's bundle (dist/bundle/, scripts/bundle-dist.mjs): ~20 files to load instead of
// 170-860, which saves a third of a command's start (0.5 s of CPU to 0.33 for `spool --version`).
// The shebang keeps the memory small: 2 MiB semi-spaces for V8's young generation (instead of 16), and glibc's
// malloc with one arena for all threads (instead of up to 8 per core) that gives freed memory back above 128 KiB of
// slack (a fixed threshold; glibc would otherwise raise it as far as 64 MB). Ingesting 1 GB, `spool serve` peaks
// ~111-115 MB instead of ~177 with no flags; --optimize-for-size (which also forces 1 MiB semi-spaces) saved as much
// but cost ~40% more CPU per GB on the embedded runner's path (bench/README.md). V8 sweeps dead ArrayBuffers (every
// chunk's Buffer) on the main thread at each scavenge instead of in a background job: on a busy machine that job
// lagged, the chunks' bytes stayed counted against the old generation's limit and started a mark-compact every
// 10-15 MB streamed (60-75 a GB; 3 with this flag), which cost the server more CPU than the rest of the path. They apply when this file is run as a program (`spool`, `./bin/spool.js`);
// `npm start` and `npm run spool` pass the same to node, and so does `spool acp` for the server it starts.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isFreshBuild } from "../scripts/source-stamp.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const fromSource = Boolean(process.env.SPOOL_FROM_SOURCE) && process.env.SPOOL_FROM_SOURCE !== "0";
// An installed package: no sources to be stale against.
const packaged = !existsSync(join(root, "src")) && existsSync(join(root, "dist", "bundle", "cli", "main.js"));
let main;
if (packaged && fromSource) {
  process.stderr.write("spool: SPOOL_FROM_SOURCE is set, but this installation has no src/ (an npm package ships dist/ only)\n");
  process.exit(2);
}
if (packaged || (!fromSource && isFreshBuild(join(root, "dist"), join(root, "src")))) {
  ({ main } = await import("../dist/bundle/cli/main.js"));
} else {
  const { register } = await import("tsx/esm/api");
  // Spool's own tsconfig.json, never the one tsx would find from the working directory: a project's (a command may
  // write one) could map a package Spool imports to a file of its own through `paths`.
  const tsconfig = join(root, "tsconfig.json");
  register({ tsconfig: existsSync(tsconfig) ? tsconfig : false });
  ({ main } = await import("../src/cli/main.ts"));
}
const code = await main(process.argv.slice(2));
// A command is over when main returns: nothing left open (a socket, a timer, stdin) may keep it alive.
// main returns once its output has been written (to a slow pipe too), so exiting loses none of it.
process.exit(code);
