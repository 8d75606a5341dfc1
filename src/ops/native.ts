import { existsSync, realpathSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { cipherAddonPath, cipherAddonRefusal } from "../runners/ssh/cipher-addon.js";
import { openSqlite, SQLITE_LINE, SQLITE_LINES, SqliteDriverMissing, type SqliteLine } from "../store/sqlite/sqlite-driver.js";
import type { Check, CheckStatus } from "./check.js";

// The native addons Spool loads. Some are built by npm for one Node ABI (process.versions.modules) and a Node of
// another ABI cannot load them (ERR_DLOPEN_FAILED, "compiled against a different Node.js version"): better-sqlite3
// 12 (Node 20's SQLite driver, src/store/sqlite/sqlite-driver.ts) and ssh2's ciphers (not loaded on Node 24 and later:
// src/runners/ssh/cipher-addon.ts). Others are on Node-API, one binary for every Node that has its version:
// better-sqlite3 13 (Node 22 and 24, prebuilt) and node-pty. None is imported here
// at the top: each is loaded by its check, so a module that does not load fails that check instead of whoever
// imports this file (`spool doctor`).

const require = createRequire(import.meta.url);

interface NativeModule {
  /** What the check is named after (`native NAME`). */
  name: string;
  /** The npm package holding the addon, loaded on this Node (better-sqlite3's line differs by Node). */
  package: string;
  /** What Spool does with it, said in a check's detail. */
  use: string;
  /** How bad it is when it does not load: fail when Spool cannot do without it. */
  missing: CheckStatus;
  /** What is lost when it does not load. */
  without: string;
  /** Why this Node must not load it (the check then says so, and loads nothing), or null. */
  refused?: () => string | null;
  /** Loads the addon (throws what loading it throws). */
  load(): Promise<void>;
}

export const NATIVE_MODULES: readonly NativeModule[] = [
  {
    name: "better-sqlite3",
    package: SQLITE_LINE.package,
    use: `the SQLite database (better-sqlite3 ${SQLITE_LINE.major}, ${SQLITE_LINE.build === "prebuilt" ? "its prebuilt Node-API binary" : "compiled for this Node at install"})`,
    missing: "fail",
    without: "spool serve cannot open its SQLite database",
    load: async () => {
      openSqlite(":memory:").close();
    },
  },
  {
    name: "node-pty",
    package: "node-pty",
    use: "commands run in a terminal",
    missing: "fail",
    without: "spool serve (its local runner) and spool runner cannot start",
    load: async () => {
      await import("node-pty");
    },
  },
  {
    name: "ssh2",
    package: "ssh2",
    use: "the SSH runner's ciphers",
    missing: "warn",
    without: "the SSH runner falls back to Node's own ciphers (about half the MB/s)",
    refused: cipherAddonRefusal,
    // ssh2 loads its addon if it can and goes on without it: loaded here as ssh2 does.
    load: async () => {
      require(cipherAddonPath(require));
    },
  },
];

/** One check per native module: whether it loads in this Node, and how to rebuild it when it does not. */
export async function nativeChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  for (const module of NATIVE_MODULES) {
    const name = `native ${module.name}`;
    const refused = module.refused?.() ?? null;
    if (refused !== null) {
      checks.push({ name, status: "ok", detail: refused, data: { module: module.package, node: process.versions.node, loaded: false } });
      continue;
    }
    try {
      await module.load();
      checks.push({
        name,
        status: "ok",
        detail: `loads in Node ${process.versions.node} (ABI ${process.versions.modules}): ${module.use}`,
        data: { module: module.package, node: process.versions.node, abi: Number(process.versions.modules) },
      });
    } catch (error) {
      const found = nativeLoadError(error) ?? { module: module.package, builtFor: null, file: null, missing: false, message: messageOf(error) };
      checks.push({
        name,
        status: module.missing,
        detail: `${describe(found)}: ${module.without}`,
        fix: fixFor(found),
        data: { module: found.module, builtFor: found.builtFor, needs: Number(process.versions.modules), node: process.versions.node, file: found.file },
      });
    }
  }
  return checks;
}

/** A native addon that would not load: which package, the ABI it was built for when the error says so. */
export interface NativeLoadError {
  module: string;
  builtFor: number | null;
  file: string | null;
  /** The package is not installed at all (this Node's SQLite driver, an optional dependency whose build failed). */
  missing: boolean;
  message: string;
}

/** What an error thrown loading a native addon says (null when it is not one). */
export function nativeLoadError(error: unknown): NativeLoadError | null {
  if (error instanceof SqliteDriverMissing) return { module: error.line.package, builtFor: null, file: null, missing: true, message: error.message };
  const message = messageOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  const versions = [...message.matchAll(/NODE_MODULE_VERSION (\d+)/g)].map((m) => Number(m[1]));
  const file = /(\/[^'"\s]*\.node)\b/.exec(message)?.[1] ?? null;
  if (code !== "ERR_DLOPEN_FAILED" && versions.length === 0 && !(file && /self-register|invalid ELF|wrong ELF/.test(message))) return null;
  const module = file ? packageOf(file) : null;
  if (!module) return null;
  return { module, builtFor: versions.length >= 2 ? versions[0]! : null, file, missing: false, message };
}

/**
 * The one line `spool serve` (and so `spool acp` and `spool mcp`, which report the server's error) prints for an
 * addon that would not load: the module, both ABIs, the Node running, and the fix.
 */
export function nativeDiagnosis(error: NativeLoadError): string {
  return `${describe(error)}. Fix: ${fixFor(error)} (spool doctor checks every native module)`;
}

function describe(error: NativeLoadError): string {
  if (error.missing) return `${firstLine(error.message)} (${process.execPath})`;
  const node = `this Node ${process.versions.node} (${process.execPath}) needs NODE_MODULE_VERSION ${process.versions.modules}`;
  if (error.builtFor !== null) return `${error.module} was built for NODE_MODULE_VERSION ${error.builtFor} (another Node's ABI), and ${node}`;
  return `${error.module} does not load (${node}): ${firstLine(error.message)}`;
}

/** The better-sqlite3 line whose package this is (either line's, whichever Node runs), or null. */
const sqliteLineOf = (module: string): SqliteLine | null => SQLITE_LINES.find((line) => line.package === module) ?? null;

/**
 * What to run for an addon that does not load, for the Node running: npm installs a missing package, npm rebuilds
 * one built for another ABI; better-sqlite3's line on this Node says which applies and what else would do.
 */
function fixFor(error: NativeLoadError): string {
  const line = sqliteLineOf(error.module);
  const node = `npm run with this Node ${process.versions.node}`;
  if (error.missing) {
    const at = spoolDirectory();
    const install = `${at ? `cd ${at} && ` : ""}${pathFirst()}npm install`;
    if (line?.build === "compiled") {
      return `${install} (${node}: it compiles better-sqlite3 ${line.major} for this Node, which needs make, a C++ compiler and python3), or run Spool on Node 24 or 22, which load better-sqlite3 13's prebuilt binary (nothing to compile)`;
    }
    return `${install} (${node}; better-sqlite3 13 is prebuilt, nothing to compile)`;
  }
  if (line?.build === "prebuilt" && error.builtFor === null) {
    // On Node-API there is no ABI to rebuild for: the binary is missing (a platform without a prebuilt one) or broken.
    const at = installDirectory(error.module);
    return `${at ? `cd ${at} && ` : ""}${pathFirst()}npm install (${node}); where better-sqlite3 13 has no prebuilt binary for ${process.platform}-${process.arch}, build it: cd ${at ? join(at, "node_modules", error.module) : `node_modules/${error.module}`} && npx node-gyp rebuild --release`;
  }
  const rebuild = rebuildFix(error.module);
  return line?.build === "compiled" ? `${rebuild}; or run Spool on Node 24 or 22, which load better-sqlite3 13's prebuilt binary (nothing to build)` : rebuild;
}

/**
 * `npm rebuild MODULE` in the directory Spool was installed in, run with the Node running now: its directory first
 * on PATH (npm and the module's build run on the first node there), and its own headers when it has them beside it
 * (node-gyp builds against a configured nodedir, which may be another Node's).
 */
function rebuildFix(module: string): string {
  const at = installDirectory(module);
  const root = dirname(dirname(process.execPath));
  const headers = existsSync(join(root, "include", "node", "node_version.h")) ? ` --nodedir=${root}` : "";
  return `${at ? `cd ${at} && ` : ""}${pathFirst()}npm rebuild ${module}${headers} (npm run with this Node ${process.versions.node}), or reinstall Spool with it`;
}

/** `PATH=…:$PATH ` that puts this Node first for npm and the builds it runs, or nothing when it is first already. */
function pathFirst(): string {
  return firstNodeOnPath() === realpath(process.execPath) ? "" : `PATH=${dirname(process.execPath)}:$PATH `;
}

/** The directory of Spool's own package.json (where `npm install` installs its dependencies), null when not found. */
function spoolDirectory(): string | null {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "bin", "spool.js"))) return dir;
  }
  return null;
}

/** The directory whose node_modules holds the package (where `npm rebuild` finds it), null when it cannot be found. */
function installDirectory(module: string): string | null {
  try {
    const file = require.resolve(`${module}/package.json`);
    const at = file.lastIndexOf(`${sep}node_modules${sep}`);
    return at < 0 ? null : file.slice(0, at);
  } catch {
    return null;
  }
}

/** The package a file under node_modules belongs to (`better-sqlite3`, `@scope/name`). */
function packageOf(file: string): string | null {
  const at = file.lastIndexOf("/node_modules/");
  if (at < 0) return null;
  const [first, second] = file.slice(at + "/node_modules/".length).split("/");
  if (!first) return null;
  return first.startsWith("@") && second ? `${first}/${second}` : first;
}

function firstNodeOnPath(): string | null {
  const node = onPath("node", process.env);
  return node === null ? null : realpath(node);
}

/** Whether a program is on PATH (an executable file of that name in one of its directories). */
export function onPath(program: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir.startsWith("/")) continue;
    const file = join(dir, program);
    try {
      if (statSync(file).isFile() && (statSync(file).mode & 0o111) !== 0) return file;
    } catch {
      // not there
    }
  }
  return null;
}

function realpath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
const firstLine = (text: string) =>
  text
    .replace(/\s*\n\s*/g, " ")
    .trim()
    .replace(/\.$/, "");
