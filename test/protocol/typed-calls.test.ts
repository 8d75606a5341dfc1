import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

/**
 * Issue 41: a test calls the server through `SpoolClient.call`, whose params and result are the method's types
 * (ParamsOf/ResultOf from src/protocol), so a misspelt field fails the typecheck instead of the test run. Probes are
 * compiled with the project's own tsconfig (extended): one misspelt param, one misread result, one call spelt right.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSC = join(ROOT, "node_modules", ".bin", "tsc");

/** What tsc says about the probes, one `file(line,col): error TSxxxx: message` a line. */
function typecheck(dir: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) =>
    // One thread: TypeScript 7's parallel checkers cost ~3 times the CPU for a few probe files (2.1 s against 0.7).
    execFile(TSC, ["--noEmit", "--singleThreaded", "--pretty", "false", "-p", join(dir, "tsconfig.json")], { cwd: dir }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    ),
  );
}

describe("typed calls: a misspelt param fails the typecheck", () => {
  // At the project's root, outside every folder tsconfig.json includes: a probe there never breaks `npm run typecheck`.
  const dir = mkdtempSync(join(ROOT, ".typed-calls-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("`call` refuses an unknown param and an unknown result field; the same call spelt right compiles", async () => {
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ extends: "../tsconfig.json", include: ["*.ts"] }));
    const head = 'import type { SpoolClient } from "../src/client/spool-client.js";\ndeclare const client: SpoolClient;\n';
    writeFileSync(join(dir, "misspelt-param.ts"), `${head}export const created = client.call("run/create", { alais: "x" });\n`);
    writeFileSync(join(dir, "misspelt-result.ts"), `${head}export const status = (await client.call("run/get", { run: "x" })).run.stauts;\n`);
    writeFileSync(
      join(dir, "spelt-right.ts"),
      `${head}export const created = client.call("run/create", { alias: "x" });\nexport const status = (await client.call("run/get", { run: "x" })).run.status;\n`,
    );
    const { code, out } = await typecheck(dir);
    const errors = out.split("\n").filter((line) => /error TS\d+/.test(line));
    expect(code, out).not.toBe(0);
    expect(errors, out).toHaveLength(2);
    // TS2561 (TS2353 without a suggestion): "Object literal may only specify known properties, but 'alais' does not exist in type …".
    expect(
      errors.find((e) => e.includes("misspelt-param.ts(")),
      out,
    ).toMatch(/error TS(2353|2561): .*'alais'/);
    // TS2551: "Property 'stauts' does not exist on type … Did you mean 'status'?".
    expect(
      errors.find((e) => e.includes("misspelt-result.ts(")),
      out,
    ).toMatch(/error TS2551: .*'stauts'.*'status'/);
    expect(errors.filter((e) => e.includes("spelt-right.ts("))).toEqual([]);
  }, 120_000);
});
