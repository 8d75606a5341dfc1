// What a build of src/ was made from: every file under src/ and under migrations/ (the schema's migrations, which the
// build compiles into dist/migrations), and the build's own inputs beside them (its scripts, its tsconfig files, and
// package-lock.json: the CLI's bundle holds the dependencies' code), with size and modification time, hashed.
// scripts/build.mjs writes it into dist/ (taken before tsc reads the sources); bin/spool.js runs dist/ only when
// the sources present still give the same stamp, so an edited, added or removed source file means running src/
// through tsx, never stale JavaScript. Stats only (no file is read): 5-10 ms of CPU at a cold start for src/'s ~220
// files, 1-2 ms warm (tsx's loader, which it spares, costs ~300 ms).
// Plain JavaScript, no dependencies: the launcher loads it before anything else.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";

/** The file in dist/ holding the stamp of the sources it was built from. */
export const STAMP_FILE = ".source-stamp";

/** The folders next to src/ that a build compiles too (tsconfig.migrations.json). */
const SIBLINGS = ["migrations"];

/** The files next to src/ that decide what a build writes (those absent are left out: an installed package has none). */
const BUILD_INPUTS = [
  "scripts/build.mjs",
  "scripts/bundle-dist.mjs",
  "tsconfig.build.json",
  "tsconfig.migrations.json",
  "tsconfig.types.json",
  "package-lock.json",
];

/** The stamp of the sources under `srcDir`, its siblings (`migrations/` next to it) and the build's inputs now. */
export function sourceStamp(srcDir) {
  const lines = [];
  const base = dirname(srcDir);
  // Paths joined as strings, relative to `base` by construction: path.join and path.relative normalise every path
  // they are given, which cost more than the stats themselves (~25 ms of a command's start for ~460 files).
  const file = (rel) => {
    const stat = statSync(`${base}/${rel}`);
    lines.push(`${rel}\0${stat.size}\0${stat.mtimeMs}`);
  };
  const walk = (rel) => {
    for (const entry of readdirSync(`${base}/${rel}`, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(`${rel}/${entry.name}`);
      else file(`${rel}/${entry.name}`);
    }
  };
  walk(relative(base, srcDir));
  for (const sibling of SIBLINGS) if (existsSync(join(base, sibling))) walk(sibling);
  for (const input of BUILD_INPUTS) if (existsSync(join(base, input))) file(input);
  return createHash("sha256").update(lines.sort().join("\n")).digest("hex");
}

/** Whether `distDir` holds a build of exactly the sources under `srcDir` and its siblings (false when either is missing). */
export function isFreshBuild(distDir, srcDir) {
  let stamp;
  try {
    stamp = readFileSync(join(distDir, STAMP_FILE), "utf8").trim();
  } catch {
    return false;
  }
  try {
    return stamp === sourceStamp(srcDir);
  } catch {
    return false;
  }
}
