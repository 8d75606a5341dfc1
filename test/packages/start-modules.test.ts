import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { SQLITE_LINE } from "../../src/store/sqlite/sqlite-driver.js";
import { builtDist } from "../helpers/build.js";
import { spawnCli, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/**
 * What the compiled `spool serve` and `spool runner` load from node_modules as they start (what bin/spool.js runs).
 * Each file Node resolves, reads and compiles costs CPU at every start, and the suite starts ~100 of each. The schema's
 * migrations are a tsc project of their own, and imported from dist/migrations they loaded Kysely's ESM build (~260
 * files) beside the copy in the bundle: ~0.3-0.4 s of CPU at every start (bench/history/README.md). The bundle holds them
 * now (scripts/bundle-dist.mjs, LITERAL_IMPORTS). A runner imports dockerode (with gRPC and protobuf) and ssh2
 * only for a Docker or SSH backend: ~200 files, 0.5 → 0.3 s of CPU for any runner's start. Recorded by a module hook
 * on every ES module Node resolves.
 */

/** Node's module hooks, registered with --import: every resolved URL in node_modules goes to $SPOOL_TEST_MODULE_LOG. */
function moduleLogger(dir: string): string {
  const hooks = join(dir, "hooks.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.includes("/node_modules/") || result.url.includes("/dist/bundle/")) appendFileSync(process.env.SPOOL_TEST_MODULE_LOG, result.url + "\\n");
  return result;
}
`,
  );
  const register = join(dir, "register.mjs");
  writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  return register;
}

/** The packages of node_modules that the modules `log` recorded come from. */
function packagesIn(log: string): Set<string | undefined> {
  return new Set(
    readFileSync(log, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1]),
  );
}

/** The packages whose code the bundle's files that `log` recorded hold (esbuild marks each module by its path: `// node_modules/openai/…`). */
function bundledPackagesIn(log: string): Set<string | undefined> {
  const files = readFileSync(log, "utf8")
    .split("\n")
    .filter((url) => url.includes("/dist/bundle/"));
  return new Set(
    files.flatMap((url) => [...readFileSync(fileURLToPath(url), "utf8").matchAll(/^\/\/ (?:\S*\/)?node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)].map((m) => m[1])),
  );
}

/** A log file for the hook, and the environment that registers it. */
function hooked(): { log: string; dir: string; env: NodeJS.ProcessEnv } {
  const dir = tempDir("spool-modules-");
  const log = join(dir, "modules.log");
  writeFileSync(log, "");
  return { log, dir, env: { NODE_OPTIONS: `--import ${pathToFileURL(moduleLogger(dir)).href}`, SPOOL_TEST_MODULE_LOG: log } };
}

describe("what the compiled commands load as they start (dist/bundle/)", () => {
  beforeAll(() => builtDist(), 150_000);

  it("spool serve loads no Kysely from node_modules: the migrations run on the bundle's copy", async () => {
    const { log, dir, env } = hooked();
    const serve = await spawnServe(["--home", join(dir, "home"), "--port", "0"], env);
    // The SQLite driver is required (src/store/sqlite/sqlite-driver.ts), out of the hook's sight: its binary is mapped, this
    // Node's line's (12 compiled for Node 20, 13's prebuilt one on 22 and 24).
    const maps = readFileSync(`/proc/${serve.child.pid}/maps`, "utf8");
    const binary =
      SQLITE_LINE.major === 12
        ? "better-sqlite3-node20/build/Release/better_sqlite3.node"
        : `better-sqlite3/prebuilds/${process.platform}-${process.arch}.node`;
    expect(maps).toContain(`/node_modules/${binary}`);
    expect(await serve.stop()).toBe(0);
    const packages = packagesIn(log);
    // The hook saw the server start: it ran the migrations on a new database and resolved its native packages.
    expect(packages.has("node-pty"), [...packages].join(", ")).toBe(true);
    expect([...packages]).not.toContain("kysely");
    // The model providers' SDKs load with the first call to a configured model (src/model/provider.ts), not at the start.
    const bundled = [...bundledPackagesIn(log)];
    expect(bundled, "the hook recorded no file of the bundle").toContain("kysely");
    expect(bundled).not.toContain("@anthropic-ai/sdk");
    expect(bundled).not.toContain("openai");
  }, 60_000);

  it("a runner loads neither dockerode nor ssh2 unless its backend is Docker or SSH", async () => {
    const { log, env } = hooked();
    const help = spawnCli(["runner", "--help"], env);
    expect(await help.exit, help.output()).toBe(0);
    expect(help.stdout()).toContain("--backend");
    const packages = [...packagesIn(log)];
    expect(packages.length, "the hook recorded nothing").toBeGreaterThan(0);
    expect(packages).not.toContain("dockerode");
    expect(packages).not.toContain("ssh2");
  }, 60_000);
});
