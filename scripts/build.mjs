#!/usr/bin/env node
// Builds spool/plugin, spool/client and spool/protocol into dist/ (JavaScript and declarations) with TypeScript's
// native tsc: `npm run build`, and `prepare` on every npm install / npm ci. Offline, a few seconds.
// Plain JavaScript on purpose: it runs before anything else is built, without tsx.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const prepare = process.argv.includes("--prepare");

let tsc;
try {
  tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
} catch {
  const message = "TypeScript is not installed (an install with --omit=dev?), so spool/plugin, spool/client and spool/protocol cannot be built";
  // An install without dev dependencies still runs the CLI (it needs no build): say why the packages are missing, do not fail it.
  if (prepare) {
    process.stderr.write(`spool: ${message}; run \`npm install\` with dev dependencies, then \`npm run build\`\n`);
    process.exit(0);
  }
  process.stderr.write(`spool build: ${message}; run \`npm install\` first\n`);
  process.exit(1);
}

// Stale output of a source file that is gone would still be importable: start from nothing.
rmSync(join(root, "dist"), { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { cwd: root, stdio: "inherit" });
const missing = [
  "dist/plugin.js",
  "dist/plugin.d.ts",
  "dist/client/index.js",
  "dist/client/index.d.ts",
  "dist/protocol/index.js",
  "dist/protocol/index.d.ts",
].filter((file) => !existsSync(join(root, file)));
if (missing.length > 0) {
  process.stderr.write(
    `spool build: tsc -p tsconfig.build.json did not write ${missing.join(", ")} (${result.error?.message ?? `exit ${result.status ?? result.signal}`})\n`,
  );
  process.exit(1);
}
if (result.status !== 0) {
  // tsc writes its output despite type errors. An install should not fail over them (the CLI runs from the sources);
  // an explicit build, and the package tests that run it, do.
  const message = "tsc reported type errors (above); dist/ was written anyway";
  if (prepare) {
    process.stderr.write(`spool: ${message} — see \`npm run typecheck\`\n`);
    process.exit(0);
  }
  process.stderr.write(`spool build: ${message}, but a build with errors is a failed build\n`);
  process.exit(1);
}
