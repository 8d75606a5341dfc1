import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA_MIGRATIONS } from "../../migrations/index.js";
import { SpoolClient } from "../../src/client/spool-client.js";
import { builtDist } from "../helpers/build.js";
import { tempDir } from "../helpers/server.js";

/**
 * The CLI as `npm run build` compiles it into dist/ and bundles it into dist/bundle/ (what bin/spool.js runs after
 * npm install / npm ci), run by plain node with no TypeScript loader: what src/ loads at run time as files (the
 * migrations, the web page, package.json, bin/spool.js for `spool acp`) must be found from the bundle too, each
 * beside the compiled module that names it.
 */

const repo = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(repo, "dist", "bundle", "cli", "main.js");

/** A plugin written in TypeScript, as a project next to Spool would (type annotations and all). */
const TS_PLUGIN = `import { defineMethod, definePlugin } from "spool/plugin";
import { z } from "zod";

const greeting: (who: string) => string = (who) => \`hello \${who} from TypeScript\`;

export default definePlugin({
  name: "ts-greeter",
  setup(app) {
    app.method(
      defineMethod({
        name: "ts-greeter/hello",
        description: "Greets.",
        params: z.strictObject({ who: z.string() }),
        result: z.object({ text: z.string() }),
        handler: ({ who }: { who: string }) => ({ text: greeting(who) }),
      }),
    );
  },
});
`;

describe("spool serve compiled (dist/bundle/cli/main.js under plain node)", () => {
  let dir: string;

  beforeAll(async () => {
    // A build of the current sources (a stale dist/ would test old code): rebuilt when the sources changed since.
    await builtDist();
    dir = tempDir("spool-compiled-");
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(repo, join(dir, "node_modules", "spool"), "dir");
    symlinkSync(join(repo, "node_modules", "zod"), join(dir, "node_modules", "zod"), "dir");
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    writeFileSync(join(dir, "greeter.ts"), TS_PLUGIN);
  }, 150_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the build holds the whole CLI, the bundled web page and the stamp of the sources", () => {
    for (const file of [
      "cli/main.js",
      "cli/commands/serve.js",
      "bundle/cli/main.js",
      "bundle/plugin.js",
      "server/server.js",
      "web/page/spool.js",
      "web/page/spool.css",
      "web/page/index.html",
      "web/page/favicon.svg",
      "migrations/index.js",
      "migrations/001_core.js",
      ".source-stamp",
    ]) {
      expect(() => readFileSync(join(repo, "dist", file)), file).not.toThrow();
    }
    // Browser code is bundled, not compiled file by file.
    expect(readdirSync(join(repo, "dist", "web", "page")).sort()).toEqual(["favicon.svg", "index.html", "spool.css", "spool.js"]);
    // The top-level migrations/ compiled next to src's output (tsconfig.migrations.json): JavaScript only.
    const compiled = readdirSync(join(repo, "dist", "migrations"));
    expect(compiled.filter((f) => !f.endsWith(".js"))).toEqual([]);
    expect(compiled.length).toBe(readdirSync(join(repo, "migrations")).length);
  });

  it("serves: migrations applied, the prebuilt web page, a TypeScript plugin loaded", async () => {
    const home = join(dir, "home");
    // The compiled CLI itself, as bin/spool.js runs it from a fresh build (bin/spool.js alone would run the sources
    // whenever a file in src/ is newer than the build; test/cli/launcher.test.ts covers that choice).
    const compiled = spawnCompiled(["serve", "--home", home, "--port", "0", "--no-local-runner", "--plugin", "./greeter.ts"], dir);
    try {
      const url = await compiled.listening;
      // migrations/, compiled into dist/migrations and loaded from there.
      const migrations = Object.keys(SCHEMA_MIGRATIONS).length;
      expect(compiled.output()).toContain(`(${migrations} migrations applied)`);

      const http = url.replace(/^ws:/, "http:");
      const page = await fetch(http);
      expect(page.status).toBe(200);
      const html = await page.text();
      const script = /src="(\/assets\/spool\.[0-9a-f]+\.js)"/.exec(html)?.[1];
      expect(script, html).toBeDefined();
      const served = Buffer.from(await (await fetch(new URL(script!, http))).arrayBuffer());
      expect(served.equals(readFileSync(join(repo, "dist", "web", "page", "spool.js")))).toBe(true);

      const client = await SpoolClient.connect(url, { token: readFileSync(join(home, "token"), "utf8").trim() });
      try {
        // A root of its own: dir holds the home and the plugin, and a project root that holds them is refused.
        const root = join(dir, "compiled");
        mkdirSync(root, { recursive: true });
        await client.initialize("compiled", { root });
        expect(await client.request("ts-greeter/hello", { who: "dist" })).toEqual({ text: "hello dist from TypeScript" });
      } finally {
        client.close();
      }
    } finally {
      await compiled.stop();
    }
  });
});

function spawnCompiled(args: string[], cwd: string) {
  // The bundle's main() under plain node, as bin/spool.js calls it (the bundle is a module, not a program; node's
  // -e would pass --input-type on to the server's worker threads, which refuse it).
  const run = join(cwd, "run-bundle.mjs");
  writeFileSync(run, `const { main } = await import(${JSON.stringify(pathToFileURL(CLI).href)});\nprocess.exitCode = await main(process.argv.slice(2));\n`);
  const child = execFile(process.execPath, [run, ...args], { cwd, env: { ...process.env, SPOOL_LOG: "warn" } });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", () => {
      const match = /Spool listening on (ws:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`dist/bundle/cli/main.js serve exited with ${code}:\n${out}`)));
  });
  return {
    listening,
    output: () => out,
    stop: () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
