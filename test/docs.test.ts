import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docSections, fillGenerated, locateSections, protocolApi } from "../src/docs/generate.js";
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

  it("SPEC.md's index, docs/spec/ and PLUGINS.md tables match the code and the headings (run `npm run docs` if this fails)", () => {
    const located = locateSections(root, docSections(undefined, root));
    // SPEC.md's tables live in the docs/spec/ files of their sections; SPEC.md is the index of those.
    expect(Object.keys(located).filter((file) => file.startsWith("docs/spec/")).length).toBeGreaterThan(0);
    for (const [file, sections] of Object.entries(located)) {
      const text = read(file);
      expect(fillGenerated(text, sections), `${file} is stale`).toBe(text);
    }
  });

  it("the server registers exactly the protocol's descriptors: each method and notification, with its schemas", () => {
    const api = protocolApi();
    const registry = ts.server.rpc.registry;
    expect([...registry.methods.keys()].sort()).toEqual([...api.methods.keys()].sort());
    expect([...registry.notifications.keys()].sort()).toEqual([...api.notifications.keys()].sort());
    for (const [name, method] of registry.methods) {
      const descriptor = api.methods.get(name)!;
      expect([method.params, method.result, method.description], name).toEqual([descriptor.params, descriptor.result, descriptor.description]);
      expect(method.params, `${name} params are the descriptor's own schema`).toBe(descriptor.params);
    }
    for (const [name, notification] of registry.notifications) expect(notification.params, name).toBe(api.notifications.get(name)!.params);
  });

  it("every error code is unique and documented in the contract (docs/spec/errors.md)", () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    const spec = read("docs/spec/errors.md");
    for (const name of Object.keys(ERRORS)) expect(spec).toContain(`\`${name}\``);
  });

  it("docs/client.md's first-session script runs against a real server and prints what the README says", async () => {
    const dir = tempDir();
    const script = join(root, "examples", ".first-session.test.mjs");
    writeFileSync(script, example("docs/client.md", "first-session"));
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
