import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { builtDist } from "../helpers/build.js";

/**
 * A client command's start loads no zod: its ~750 KB chunk cost every `spool` command ~0.12-0.15 s of CPU (of
 * ~0.35 s for `spool --version`). Read from the CLI's bundle as `npm run build` writes it (what bin/spool.js runs):
 * the files Node loads before a command runs are cli/main.js and the command's chunk with every chunk they import
 * statically; a dynamic import (config.json read in full, src/cli/common.ts) is loaded only when it runs.
 */

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bundle = join(repo, "dist", "bundle");
const MAIN = join(bundle, "cli", "main.js");

/** The commands that load zod as they start, each for a reason of its own (`spool serve` loads it with the server). */
const NEEDS_ZOD: Record<string, string> = {
  runner: "a runner checks the server's messages against protocol/runner.ts's schemas",
  acp: "the Agent Client Protocol SDK is built on zod",
  mcp: "the MCP SDK is built on zod, and the tools' schemas are zod's",
  doctor: "checks config.json in full and the runners' sandbox settings, with their schemas",
};

/** The bundle's files a file imports statically (`import … from "./x.js"`, `import "./x.js"`), as paths. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^(?:import|export)\s(?:[^;]*?\sfrom\s*)?["'](\.{1,2}\/[^"']+)["']/gms)].map((m) => resolve(dirname(file), m[1]!));
}

/** Every file loaded with `entries`, them included. */
function loaded(entries: string[]): Set<string> {
  const seen = new Set(entries);
  const queue = [...entries];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const next of staticImports(file).filter((f) => !seen.has(f))) {
      seen.add(next);
      queue.push(next);
    }
  }
  return seen;
}

/** Each command of the table in cli/main.js with the chunk its loader imports. */
function commandChunks(): Map<string, string> {
  const text = readFileSync(MAIN, "utf8");
  const table = new Map<string, string>();
  for (const m of text.matchAll(/^ {2}([\w-]+): \{[\s\S]*?import\("(\.\.\/[^"]+)"\)/gm)) table.set(m[1]!, resolve(dirname(MAIN), m[2]!));
  return table;
}

describe("a client command's start loads no zod (dist/bundle/)", () => {
  let zodChunks: string[];
  let commands: Map<string, string>;
  beforeAll(async () => {
    await builtDist();
    zodChunks = readdirSync(bundle)
      .map((name) => join(bundle, name))
      .filter((file) => file.endsWith(".js") && /^\/\/ \S*node_modules\/zod\//m.test(readFileSync(file, "utf8")));
    commands = commandChunks();
  }, 150_000);

  it("the bundle has zod in a chunk of its own, and the table's commands are found", () => {
    expect(zodChunks).toHaveLength(1);
    expect(commands.size).toBeGreaterThan(20);
    for (const name of ["runs", "tail", "act", "serve", ...Object.keys(NEEDS_ZOD)]) expect(commands.has(name), name).toBe(true);
  });

  it("cli/main.js (`spool --version`, `spool help`) loads no zod", () => {
    expect([...loaded([MAIN])].filter((file) => zodChunks.includes(file))).toEqual([]);
  });

  it("no client command loads zod before it runs", () => {
    const withZod = [...commands].filter(([, chunk]) => loaded([MAIN, chunk]).has(zodChunks[0]!)).map(([name]) => name);
    expect(withZod.sort()).toEqual(Object.keys(NEEDS_ZOD).sort());
  });
});
