import { execFile } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { installTool, toolPaths } from "../../scripts/test-tools.mjs";
import { openSqlite, SQLITE_LINE, SQLITE_PACKAGES, sqliteDriverPath, sqliteLineFor } from "../../src/store/sqlite/sqlite-driver.js";
import { infraRequired } from "../helpers/infra.js";
import { tempDir } from "../helpers/server.js";

// Each Node line loads its own better-sqlite3 (src/store/sqlite/sqlite-driver.ts): 13, prebuilt on Node-API 10, on Node 22.14+
// and 24; 12 (the optional alias better-sqlite3-node20), compiled for the Node's ABI at install, on Node 20, where 13
// crashes as it loads. better-sqlite3 12 aborted Node 24 when a collected statement was freed
// (`Assertion failed: (env) != nullptr` in node::RemoveEnvironmentCleanupHook, from Statement::~Statement):
// `spool serve` 8 starts of 8.

const repo = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

describe("the SQLite driver of each Node line", () => {
  it("Node-API 10 (Node 22.14+, 24) loads better-sqlite3 13; Node-API 9 (Node 20) the 12 under its alias", () => {
    expect(sqliteLineFor(10)).toEqual({ package: "better-sqlite3", major: 13, build: "prebuilt" });
    expect(sqliteLineFor(9)).toEqual({ package: "better-sqlite3-node20", major: 12, build: "compiled" });
    expect(SQLITE_LINE).toEqual(sqliteLineFor(Number(process.versions.napi)));
    // package.json: 13 a dependency (no install script: nothing compiled), 12 optional (its build may fail where no
    // compiler is, and only Node 20 needs it).
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      optionalDependencies: Record<string, string>;
    };
    expect(pkg.dependencies["better-sqlite3"]).toMatch(/^\^13\./);
    expect(pkg.optionalDependencies["better-sqlite3-node20"]).toMatch(/^npm:better-sqlite3@\^12\./);
  });

  it("this Node loads its line's package, of its major version", () => {
    const path = sqliteDriverPath();
    expect(path).toContain(`/node_modules/${SQLITE_LINE.package}/`);
    const version = (createRequire(path)(`${SQLITE_LINE.package}/package.json`) as { version: string }).version;
    expect(Number(version.split(".")[0])).toBe(SQLITE_LINE.major);
    const db = openSqlite(":memory:");
    try {
      expect((db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v).toMatch(/^3\.\d+\.\d+$/);
    } finally {
      db.close();
    }
  });

  it("no module but src/store/sqlite/sqlite-driver.ts loads either package: a static import loads the wrong line on some Node", () => {
    const names = SQLITE_PACKAGES.map((p) => p.replace(/[-/]/g, "\\$&")).join("|");
    // A value import, import() or require (not one quoted in a child's script, not `import("…").Type`).
    const loads = new RegExp(
      `(?:^\\s*import\\s+(?!type\\b)[^;]*?from\\s*|(?<![\\w'"\`.])import\\(\\s*|(?<![\\w'"\`.])require\\(\\s*|\\bresolve\\(\\s*)["'](?:${names})["'](?!\\s*\\)\\s*\\.)`,
      "m",
    );
    const offenders: string[] = [];
    const visit = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== "node_modules" && entry.name !== "fixtures") visit(path);
        } else if (/\.(?:ts|mts|js|mjs|cjs)$/.test(entry.name) && loads.test(readFileSync(path, "utf8"))) {
          offenders.push(relative(repo, path));
        }
      }
    };
    for (const dir of ["src", "test", "bench", "scripts"]) visit(join(repo, dir));
    // This file's own samples below are not loads.
    expect(offenders.filter((file) => file !== "test/store/sqlite-driver.test.ts")).toEqual([]);
    // The reading finds what it looks for.
    expect(loads.test('import SQLite from "better-sqlite3";')).toBe(true);
    expect(loads.test('const D = require("better-sqlite3-node20");')).toBe(true);
    expect(loads.test('const path = createRequire(import.meta.url).resolve("better-sqlite3");')).toBe(true);
    expect(loads.test('import type SQLite from "better-sqlite3";')).toBe(false);
  });
});

/**
 * A store whose statements are collected while it works, by garbage collections V8 runs from its own tasks (between
 * timer turns, under allocation), on a worker thread that ends with statements unfinalized, and at the process's exit:
 * where better-sqlite3 12 aborted Node 24 (every run, by hand: a collection from a task enters no context, and 12's
 * statement destructor asks for the environment of the current one). Run by the Node of each line.
 */
function collectedStatementsScript(dir: string): string {
  const src = (file: string) => JSON.stringify(join(repo, "src", file));
  const script = join(dir, "collected.mjs");
  writeFileSync(
    script,
    `import { Worker } from "node:worker_threads";
const { openStore } = await import(${src("store/sqlite/database.ts")});
const { sqliteDriverPath, SQLITE_LINE } = await import(${src("store/sqlite/sqlite-driver.ts")});
const store = openStore(${JSON.stringify(join(dir, "spool.db"))}, { walCheckpointFromBytes: 0 });
store.sqlite.exec("CREATE TABLE t (x)");
// Garbage, a timer turn at a time: V8 collects from its tasks, not from JavaScript.
const churn = async () => {
  for (let round = 0; round < 50; round++) {
    let junk = [];
    for (let i = 0; i < 20000; i++) junk.push({ i, s: "x" + i });
    junk = null;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};
for (let i = 0; i < 3000; i++) store.sqlite.prepare("SELECT " + i + " AS n FROM t").all();
await churn();
// A worker that prepares statements and ends without closing its connection: they are freed as its environment goes.
const worker = new Worker(
  'const D = require(require("node:worker_threads").workerData); const db = new D(' + JSON.stringify(${JSON.stringify(join(dir, "spool.db"))}) + ');' +
    'for (let i = 0; i < 2000; i++) db.prepare("SELECT " + i + " AS n FROM t").all();',
  { eval: true, workerData: sqliteDriverPath() },
);
await new Promise((resolve, reject) => { worker.once("exit", resolve); worker.once("error", reject); });
for (let i = 0; i < 3000; i++) store.sqlite.prepare("SELECT " + i + " + 1 AS n FROM t").all();
await churn();
await store.close();
for (let i = 0; i < 1000; i++) openStore(":memory:").sqlite.prepare("SELECT " + i);
console.log("done on Node " + process.versions.node + " with " + SQLITE_LINE.package);`,
  );
  return script;
}

describe("statements collected on every Node line: no abort", () => {
  const lines = [
    { name: `this Node (${process.versions.node})`, tool: null },
    { name: "Node 20", tool: "node20" },
    { name: "Node 22", tool: "node22" },
    { name: "Node 24", tool: "node24" },
  ] as const;
  for (const line of lines) {
    it(`${line.name}: a store, a worker and the exit free their statements, exit 0`, async (ctx) => {
      let node = process.execPath;
      if (line.tool) {
        const missing = await installTool(line.tool);
        if (missing && infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${missing}`);
        if (missing) {
          console.warn(`skipping ${line.name}: ${missing}`);
          return ctx.skip();
        }
        node = toolPaths(line.tool).node;
        // The line's Node is the very version this process runs (CI's Node 20 pass, and each pass under
        // scripts/node-pass.sh): the case above ran the same script on it.
        const version = (await run(node, ["-p", "process.versions.node"])).stdout.trim();
        if (version === process.versions.node) {
          console.warn(`skipping ${line.name}: it is this Node (${version}), run above`);
          return ctx.skip();
        }
        if (line.tool === "node20") {
          // Node 20 loads the tree's better-sqlite3 12 only when it was built for Node 20 (scripts/node-pass.sh builds
          // the tree for the Node the suite runs on): test/cli/doctor-native.test.ts covers the other case. Its binary
          // is loaded by the first database, not by the require.
          const loads = await run(node, ["-e", 'new (require(process.argv[1]))(":memory:").close()', "better-sqlite3-node20"], { cwd: repo }).then(
            () => true,
            () => false,
          );
          if (!loads) {
            console.warn("skipping Node 20: this tree's better-sqlite3 12 is built for another Node's ABI");
            return ctx.skip();
          }
        }
      }
      const script = collectedStatementsScript(tempDir("spool-collected-"));
      const ran = await run(node, ["--import", "tsx", script], { cwd: repo, timeout: 120_000 }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code: number | null; signal: string | null; stdout: string; stderr: string }) => ({
          code: error.code ?? error.signal,
          stdout: error.stdout,
          stderr: error.stderr,
        }),
      );
      expect(ran.stderr).not.toContain("Assertion failed");
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stdout).toMatch(/^done on Node \d+\.\d+\.\d+ with better-sqlite3(-node20)?$/m);
    }, 150_000);
  }
});
