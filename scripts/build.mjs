#!/usr/bin/env node
// Builds dist/ with TypeScript's native tsc: all of src as JavaScript (the CLI and the server, which bin/spool.js
// runs from dist/ when it is a build of the sources present), the schema's migrations (migrations/, into
// dist/migrations, where the compiled server loads them), the declarations of spool/plugin, spool/client and
// spool/protocol, the web page bundled by esbuild, and the CLI with the package entry points bundled (bundle-dist.mjs). `npm run build`, and `prepare` on every npm install /
// npm ci. Offline, a few seconds.
// Plain JavaScript on purpose: it runs before anything else is built, without tsx.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isFreshBuild, STAMP_FILE, sourceStamp } from "./source-stamp.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const prepare = process.argv.includes("--prepare");

// `npm pack` runs prepack (a build) and then prepare: a dist/ that is already a build of these sources is kept.
if (prepare && isFreshBuild(join(root, "dist"), join(root, "src"))) process.exit(0);

let tsc;
try {
  tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
} catch {
  const message =
    "TypeScript is not installed (an install with --omit=dev?), so dist/ (spool/plugin, spool/client, spool/protocol, the compiled CLI) cannot be built";
  // An install without dev dependencies still runs the CLI (from the sources, through tsx): say why the packages are missing, do not fail it.
  if (prepare) {
    process.stderr.write(`spool: ${message}; run \`npm install\` with dev dependencies, then \`npm run build\`\n`);
    process.exit(0);
  }
  process.stderr.write(`spool build: ${message}; run \`npm install\` first\n`);
  process.exit(1);
}

// The stamp of the sources is taken before tsc reads them: a file edited while the build runs makes the stamp
// stale, never the build.
const stamp = sourceStamp(join(root, "src"));

// Built into a directory of its own, then put in place: a CLI starting meanwhile (tests spawn bin/spool.js while
// another test builds) finds the old dist/ or none (and runs the sources), never a half-written one. Starting from
// nothing also means no stale output of a source file that is gone.
const out = join(root, `.dist-build-${process.pid}`);
rmSync(out, { recursive: true, force: true });

function tscRun(project, outDir = out) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsc, "-p", join(root, project), "--outDir", outDir], { cwd: root, stdio: "inherit" });
    child.once("error", (error) => resolve({ error, status: null }));
    child.once("exit", (status, signal) => resolve({ status, signal }));
  });
}
// Three projects: src/ (rootDir src), the migrations (rootDir migrations, a folder of dist/ of their own), the declarations.
const results = await Promise.all([tscRun("tsconfig.build.json"), tscRun("tsconfig.migrations.json", join(out, "migrations")), tscRun("tsconfig.types.json")]);

function fail(message) {
  rmSync(out, { recursive: true, force: true });
  process.stderr.write(`spool build: ${message}\n`);
  process.exit(1);
}

const missing = [
  "cli/main.js",
  "migrations/index.js",
  "plugin.js",
  "plugin.d.ts",
  "client/index.js",
  "client/index.d.ts",
  "protocol/index.js",
  "protocol/index.d.ts",
].filter((file) => !existsSync(join(out, file)));
if (missing.length > 0) {
  const why = results.map((r) => r.error?.message ?? `exit ${r.status ?? r.signal}`).join(", ");
  fail(`tsc -p tsconfig.build.json / tsconfig.migrations.json / tsconfig.types.json did not write ${missing.map((f) => `dist/${f}`).join(", ")} (${why})`);
}

// The web page, bundled now (a server running from dist/ serves these files and loads no esbuild), by the same
// function that bundles it at run time from the sources.
try {
  const { bundlePage } = await import(pathToFileURL(join(out, "web", "assets.js")).href);
  const page = join(root, "src", "web", "page");
  const { js, css } = await bundlePage(page);
  mkdirSync(join(out, "web", "page"), { recursive: true });
  writeFileSync(join(out, "web", "page", "spool.js"), js);
  writeFileSync(join(out, "web", "page", "spool.css"), css);
  for (const file of ["index.html", "favicon.svg"]) copyFileSync(join(page, file), join(out, "web", "page", file));
} catch (error) {
  fail(`bundling the web page failed: ${error instanceof Error ? error.message : String(error)}`);
}

// The CLI and the package's entry points bundled (scripts/bundle-dist.mjs): what bin/spool.js and the package's
// exports load.
try {
  const { bundleDist } = await import("./bundle-dist.mjs");
  await bundleDist(out);
} catch (error) {
  fail(`bundling dist/ failed: ${error instanceof Error ? error.message : String(error)}`);
}

// tsc writes its output despite type errors, and that output is the sources as they are (what tsx would run): the
// build is stamped either way, so an install runs the compiled CLI.
writeFileSync(join(out, STAMP_FILE), `${stamp}\n`);
const dist = join(root, "dist");
const old = join(root, `.dist-old-${process.pid}`);
try {
  renameSync(dist, old);
} catch (error) {
  if (error.code !== "ENOENT") fail(`cannot move the previous dist/ aside: ${error.message}`);
}
try {
  renameSync(out, dist);
} catch (error) {
  // Another build put its dist/ in place meanwhile (same sources or newer): keep it.
  if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") fail(`cannot put dist/ in place: ${error.message}`);
  rmSync(out, { recursive: true, force: true });
}
rmSync(old, { recursive: true, force: true });

if (results.some((r) => r.status !== 0)) {
  // An install should not fail over type errors; an explicit build, and the package tests that run it, do.
  const message = "tsc reported type errors (above); dist/ was written anyway";
  if (prepare) {
    process.stderr.write(`spool: ${message} — see \`npm run typecheck\`\n`);
    process.exit(0);
  }
  process.stderr.write(`spool build: ${message}, but a build with errors is a failed build\n`);
  process.exit(1);
}
