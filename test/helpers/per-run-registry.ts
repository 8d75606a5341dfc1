import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/*
 * vitest's globalSetup: the suite records its Spool homes in a registry of its own (SPOOL_REGISTRY, home/registry.ts),
 * removed when the run ends. Every test server, `spool serve` and `spool runner` the suite starts records its home,
 * token, database and socket there, and every sandbox they build reads it, so what the suite proves about hiding
 * other homes (test/runners/no-key) holds as before; the person's own registry (~/.local/state/spool/state-paths)
 * is left as it was. Recorded there, the homes of a run outlived it: two runs left 5,294 entries, which every
 * sandboxed command on the machine then looked at when it started (bench/history/README.md, issue 54).
 *
 * Set here, in the main process, before the workers start: they, and what they spawn with process.env, inherit it.
 */
export default function setup(): () => void {
  const registry = mkdtempSync(join(tmpdir(), "spool-test-registry-"));
  process.env.SPOOL_REGISTRY = registry;
  return () => {
    rmSync(registry, { recursive: true, force: true });
    // The records of running commands' views beside it (home/registry.ts viewsDir).
    rmSync(`${registry}.views`, { recursive: true, force: true });
  };
}
