import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Plugin } from "esbuild";

/** One file the page is made of, ready to send. */
export interface Asset {
  /** The URL path it is served under (assets carry their content hash in the name). */
  path: string;
  type: string;
  body: Buffer;
  gzip: Buffer;
  etag: string;
  /** Hashed names never change content: browsers may keep them for good. */
  immutable: boolean;
}

export interface PageAssets {
  /** By URL path: "/", "/assets/spool.<hash>.js", … */
  byPath: Map<string, Asset>;
  /** Bytes of everything gzipped (what a first visit downloads). */
  gzipBytes: number;
}

/**
 * Beside this module: the page's sources (src/web/page/, bundled on first use), or, when this module is the
 * compiled dist/web/assets.js, the bundle `npm run build` made of them (dist/web/page/: spool.js, spool.css,
 * index.html, favicon.svg), so a server running from dist/ loads no esbuild.
 */
const PAGE_DIR = fileURLToPath(new URL("./page/", import.meta.url));
const FROM_SOURCES = import.meta.url.endsWith(".ts");

function asset(path: string, type: string, body: Buffer, immutable: boolean): Asset {
  const hash = createHash("sha256").update(body).digest("base64url").slice(0, 16);
  return { path, type, body, gzip: gzipSync(body, { level: 9 }), etag: `"${hash}"`, immutable };
}

/**
 * The src/protocol modules the page shares (proposal facts, sandbox modes) also define zod schemas the page
 * never uses. A top-level `= z.…(…)` is a call esbuild must keep (it cannot know it is free of side
 * effects), which would bundle all of zod; marked pure, unused schemas are dropped, and zod with them.
 */
const pureProtocolSchemas: Plugin = {
  name: "pure-protocol-schemas",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]protocol[\\/][^\\/]+\.ts$/ }, (args) => ({
      loader: "ts",
      contents: readFileSync(args.path, "utf8").replace(/=\s*z\./g, "= /* @__PURE__ */ z."),
    }));
  },
};

const hashOf = (body: Uint8Array) => createHash("sha256").update(body).digest("hex").slice(0, 12);

/** The page's script and stylesheet bundled from its sources in `pageDir` (src/web/page/). */
export async function bundlePage(pageDir: string): Promise<{ js: Uint8Array; css: Uint8Array }> {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [join(pageDir, "main.ts"), join(pageDir, "style.css")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
    outdir: "/spool-page",
    legalComments: "eof",
    plugins: [pureProtocolSchemas],
    logLevel: "silent",
  });
  const js = result.outputFiles.find((f) => f.path.endsWith(".js"));
  const css = result.outputFiles.find((f) => f.path.endsWith(".css"));
  if (!js || !css) throw new Error("building the web page produced no script or no stylesheet");
  return { js: js.contents, css: css.contents };
}

/**
 * The page: its TypeScript sources and @xterm/xterm bundled by esbuild (already installed with tsx) into one
 * script and one stylesheet, with nothing fetched from elsewhere, or that bundle as `npm run build` wrote it.
 * Built once per process, on first use.
 */
async function buildPage(): Promise<PageAssets> {
  const { js, css } = FROM_SOURCES
    ? await bundlePage(PAGE_DIR)
    : { js: readFileSync(join(PAGE_DIR, "spool.js")), css: readFileSync(join(PAGE_DIR, "spool.css")) };
  const script = asset(`/assets/spool.${hashOf(js)}.js`, "text/javascript; charset=utf-8", Buffer.from(js), true);
  const style = asset(`/assets/spool.${hashOf(css)}.css`, "text/css; charset=utf-8", Buffer.from(css), true);
  const iconBody = readFileSync(`${PAGE_DIR}favicon.svg`);
  const icon = asset(`/assets/favicon.${hashOf(iconBody)}.svg`, "image/svg+xml", iconBody, true);
  const html = readFileSync(`${PAGE_DIR}index.html`, "utf8").replace("%SCRIPT%", script.path).replace("%STYLE%", style.path).replace("%ICON%", icon.path);
  const index = asset("/", "text/html; charset=utf-8", Buffer.from(html), false);
  const all = [index, script, style, icon];
  return { byPath: new Map(all.map((a) => [a.path, a])), gzipBytes: all.reduce((n, a) => n + a.gzip.length, 0) };
}

let built: Promise<PageAssets> | null = null;

/** The page's files, built on first use and shared by every server of the process. A failed build is tried again next time. */
export function pageAssets(): Promise<PageAssets> {
  built ??= buildPage().catch((error: unknown) => {
    built = null;
    throw error;
  });
  return built;
}
