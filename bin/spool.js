#!/usr/bin/env -S node --max-semi-space-size=2 --optimize-for-size
// The spool CLI. It runs the compiled JavaScript in dist/ when dist/ is a build of the sources present (its stamp,
// written by `npm run build` and by `prepare` on npm install / npm ci, matches src/'s file sizes and modification
// times), else src/ through tsx's loader, so an edited source never runs stale code. SPOOL_FROM_SOURCE=1 runs the
// sources anyway. Compiled, `spool serve` needs ~55 MB less memory (no loader thread, no esbuild process).
// The shebang's flags keep V8's heap small: 2 MiB semi-spaces for the young generation (instead of 16) and V8's
// memory-saving heuristics for the old one; while ingesting, `spool serve` peaks ~110 MB instead of ~180 for ~10%
// more CPU per GB (bench/README.md). They apply when this file is run as a program (`spool`, `./bin/spool.js`);
// `npm start` and `npm run spool` pass the same flags to node, and so does `spool acp` for the server it starts.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isFreshBuild } from "../scripts/source-stamp.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const fromSource = Boolean(process.env.SPOOL_FROM_SOURCE) && process.env.SPOOL_FROM_SOURCE !== "0";
let main;
if (!fromSource && isFreshBuild(join(root, "dist"), join(root, "src"))) {
  ({ main } = await import("../dist/cli/main.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
const code = await main(process.argv.slice(2));
// A command is over when main returns: nothing left open (a socket, a timer, stdin) may keep it alive.
// Writes to pipes and files are synchronous here, so exiting loses no output.
process.exit(code);
