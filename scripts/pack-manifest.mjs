#!/usr/bin/env node
// The package.json a tarball ships: the repository's without its `prepare` script. `prepare` builds dist/ in a
// clone (npm install / npm ci); a tarball already holds dist/ and no scripts/build.mjs, and npm (11) warns about
// an install script "not yet covered by allowScripts" for every install of a package that has one.
// `npm pack` runs this after the build (prepack) and again with --restore (postpack), which puts the repository's
// package.json back; a pack that failed in between is put right by the next prepack (the first thing this does).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const manifest = join(root, "package.json");
const kept = join(root, ".package.json.repository");

if (existsSync(kept)) renameSync(kept, manifest);
if (!process.argv.includes("--restore")) {
  const text = readFileSync(manifest, "utf8");
  writeFileSync(kept, text);
  const pkg = JSON.parse(text);
  delete pkg.scripts.prepare;
  // Written beside it and renamed over it: whoever reads package.json meanwhile (a test run's module resolver, while
  // the install test packs) reads one whole file or the other, never an empty one (a Node 22 run of the suite did).
  const next = `${manifest}.next`;
  writeFileSync(next, `${JSON.stringify(pkg, null, 2)}\n`);
  renameSync(next, manifest);
}
