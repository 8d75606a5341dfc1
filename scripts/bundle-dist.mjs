// Bundles the compiled dist/ into a few files for starting fast: the CLI (bin/spool.js runs dist/bundle/cli/main.js)
// and spool/plugin (the package's export), with their shared code in chunks, so a plugin and the server it runs in
// share one copy of every module. spool/client and spool/protocol stay dist/'s own
// files: they are built for browsers too, and this bundle is Node's (node:module in every file).
// Node's module loader costs about a millisecond of CPU a module: from dist/'s files `spool --version` opened 168
// JavaScript files (0.5 s of CPU) and `spool serve` ~860 (1.5 s of CPU until listening); bundled, 20 files, 0.33 s
// and 0.9 s (bench/history/README.md).
// Plain JavaScript, run by scripts/build.mjs after tsc.
import { readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";

/**
 * Packages left to Node to load: native code (better-sqlite3, ssh2, node-pty), files found beside the package's own
 * (esbuild, typescript, tsx, dockerode, the headless terminal), or optional native parts resolved at run time (pg).
 */
export const EXTERNAL = ["better-sqlite3", "ssh2", "cpu-features", "node-pty", "dockerode", "esbuild", "typescript", "tsx", "pg", "@xterm/headless"];

/**
 * Imports whose specifier is a variable in the source, so that a bundler building spool/client for a browser does
 * not follow them (src/client/spool-client.ts), made literal here so that this Node bundle does: else the bundle
 * would load a second copy of the module from dist/ (two ConnectError classes), or, for the schema's migrations (a
 * project of their own for tsc), Kysely's own ~260 files beside the copy bundled. A rename fails the build.
 */
const LITERAL_IMPORTS = {
  "client/spool-client.js": [["import(NODE_TRANSPORT)", 'import("./ws-transport.js")']],
  "store/migrator.js": [["import(COMPILED_INDEX)", 'import("../migrations/index.js")']],
};

/**
 * zod exports its ~50 translations of its error messages as `z.locales` (and `core.locales`), so a bundle keeps all
 * of them: 366 KB of the CLI's 2.4 MB that every `spool serve` compiled at its start. Spool's messages are English,
 * which zod sets itself (from locales/en.js, imported on its own): here `locales` holds English alone. A newer zod
 * whose locales index is gone or renamed fails the build (the import is not resolved).
 */
const zodEnglishOnly = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core|mini)[\\/]/.test(args.importer)
        ? { path: join(args.resolveDir, "..", "locales", "index.js"), namespace: "zod-english-only" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "zod-english-only" }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      resolveDir: join(args.path, ".."),
      loader: "js",
    }));
  },
};

/** The bundle's entry points, as paths inside dist/. */
export const ENTRIES = ["cli/main.js", "plugin.js"];

/**
 * Writes `<dist>/bundle/`. Every `import.meta.url` of a compiled module is rewritten to that module's own URL in
 * dist/ (found from the URL of the file it lands in), so what a module finds beside itself (the migrations, the web page,
 * a worker's program file, package.json) is found as before.
 */
export async function bundleDist(dist) {
  const { build } = await import("esbuild");
  const outdir = join(dist, "bundle");
  const ownFile = (path) => path.startsWith(dist + sep) && !path.startsWith(outdir + sep);
  await build({
    entryPoints: ENTRIES.map((entry) => join(dist, entry)),
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external: EXTERNAL,
    // CommonJS packages bundled into ESM (ws, pg's parts, prom-client) call require for Node's own modules.
    // Each output file also knows dist/'s URL (its own, up to /bundle/), for the rewritten import.meta.url below.
    banner: {
      js: 'import { createRequire as __spoolCreateRequire } from "node:module"; const require = __spoolCreateRequire(import.meta.url); const __spoolDist = import.meta.url.slice(0, import.meta.url.lastIndexOf("/bundle/") + 1);',
    },
    logLevel: "warning",
    plugins: [
      zodEnglishOnly,
      {
        name: "own-import-meta-url",
        setup(b) {
          b.onLoad({ filter: /\.js$/ }, async (args) => {
            if (!ownFile(args.path)) return undefined;
            let text = await readFile(args.path, "utf8");
            for (const [from, to] of LITERAL_IMPORTS[relative(dist, args.path).split(sep).join("/")] ?? []) {
              if (!text.includes(from)) throw new Error(`${args.path} no longer has ${from} (scripts/bundle-dist.mjs LITERAL_IMPORTS)`);
              text = text.replaceAll(from, to);
            }
            if (!text.includes("import.meta.url")) return { contents: text, loader: "js" };
            const own = JSON.stringify(relative(dist, args.path).split(sep).join("/"));
            return { contents: text.replaceAll("import.meta.url", `new URL(${own}, __spoolDist).href`), loader: "js" };
          });
        },
      },
    ],
  });
}
