import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { builtDist } from "../helpers/build.js";
import { spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/**
 * What the compiled `spool serve` loads from node_modules as it starts (what bin/spool.js runs). The schema's
 * migrations are a tsc project of their own, and imported from dist/migrations they loaded Kysely's ESM build (~260
 * files) beside the copy in the bundle: ~0.3-0.4 s of CPU at every start (bench/README.md). The bundle holds them
 * now (scripts/bundle-dist.mjs, LITERAL_IMPORTS). Recorded by a module hook on every ES module Node resolves.
 */

/** Node's module hooks, registered with --import: every resolved URL in node_modules goes to $SPOOL_TEST_MODULE_LOG. */
function moduleLogger(dir: string): string {
  const hooks = join(dir, "hooks.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.includes("/node_modules/")) appendFileSync(process.env.SPOOL_TEST_MODULE_LOG, result.url + "\\n");
  return result;
}
`,
  );
  const register = join(dir, "register.mjs");
  writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  return register;
}

describe("the compiled server's start (dist/bundle/)", () => {
  beforeAll(() => builtDist(), 150_000);

  it("loads no Kysely from node_modules: the migrations run on the bundle's copy", async () => {
    const dir = tempDir("spool-modules-");
    const log = join(dir, "modules.log");
    writeFileSync(log, "");
    const home = join(dir, "home");
    const serve = await spawnServe(["--home", home, "--port", "0"], {
      NODE_OPTIONS: `--import ${pathToFileURL(moduleLogger(dir)).href}`,
      SPOOL_TEST_MODULE_LOG: log,
    });
    expect(await serve.stop()).toBe(0);
    const packages = new Set(
      readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1]),
    );
    // The hook saw the server start: it ran the migrations on a new database and resolved its native packages.
    expect(packages.has("better-sqlite3"), [...packages].join(", ")).toBe(true);
    expect([...packages]).not.toContain("kysely");
  }, 60_000);
});
