import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientApiSource } from "../src/docs/client-types.js";
import { docSections, fillGenerated } from "../src/docs/generate.js";
import { ERRORS } from "../src/rpc/errors.js";
import { startTestServer, type TestServer, tempDir } from "./helpers/server.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const read = (file: string) => readFileSync(join(root, file), "utf8");

function example(file: string, name: string): string {
  const match = new RegExp(`<!-- example:${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(read(file));
  if (!match) throw new Error(`example ${name} not found in ${file}`);
  return match[1]!;
}

describe("documentation", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts.stop());

  it("SPEC.md and PLUGINS.md tables match the code (run `npm run docs` if this fails)", () => {
    for (const [file, sections] of Object.entries(docSections(ts.server.rpc.registry))) {
      const text = read(file);
      expect(fillGenerated(text, sections), `${file} is stale`).toBe(text);
    }
  });

  it("the typed client API matches the schemas (run `npm run docs` if this fails)", () => {
    expect(clientApiSource(ts.server.rpc.registry), "src/client/api.ts is stale").toBe(read("src/client/api.ts"));
  });

  it("every error code is unique and documented in SPEC.md", () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    const spec = read("SPEC.md");
    for (const name of Object.keys(ERRORS)) expect(spec).toContain(`\`${name}\``);
  });

  it("the README's first-session script runs against a real server and prints what the README says", async () => {
    const dir = tempDir();
    const script = join(root, "examples", ".first-session.test.mjs");
    writeFileSync(script, example("README.md", "first-session"));
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [script], {
        cwd: dir,
        env: { ...process.env, SPOOL_HOME: ts.home, SPOOL_URL: ts.server.url },
      });
      expect(stdout).toMatch(/joined project \d+/);
      expect(stdout).toMatch(/created run hello-\d+ status 200/);
      expect(stdout).toMatch(/runs in project: \d+/);
      expect(stdout).toContain("error: NOT_FOUND");
    } finally {
      (await import("node:fs")).rmSync(script, { force: true });
    }
  });

  it("PLUGINS.md's example plugin is the file examples/run-counter.ts", () => {
    expect(read("examples/run-counter.ts")).toBe(example("PLUGINS.md", "run-counter"));
  });
});
