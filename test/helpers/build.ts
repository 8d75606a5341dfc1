import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { isFreshBuild } from "../../scripts/source-stamp.mjs";

const repo = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Makes dist/ a build of the sources present: `scripts/build.mjs` (`npm run build`) when dist/ is missing or stale,
 * nothing when its stamp matches src/ and migrations/ as they are now (bin/spool.js runs that dist/ on the same
 * check). npm ci and npm install build it (prepare), so a test run normally finds it fresh: the files that test the
 * built packages ran a full build each (tsc over all of src/ and the web page's bundle, ~20-30 s of CPU, over their
 * 150 s hook limit on a loaded machine) to write the same files again.
 */
export async function builtDist(): Promise<void> {
  if (isFreshBuild(join(repo, "dist"), join(repo, "src"))) return;
  try {
    await promisify(execFile)(process.execPath, [join(repo, "scripts", "build.mjs")], { cwd: repo, timeout: 120_000 });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`npm run build (scripts/build.mjs) failed:\n${stdout ?? ""}${stderr ?? ""}`);
  }
}
