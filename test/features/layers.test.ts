import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : /\.ts$/.test(name) ? [path] : [];
  });
}

describe("features call core, never store (DESIGN §2)", () => {
  it("no file under src/features imports from src/store", () => {
    const offenders = sources(join(root, "src/features")).flatMap((file) =>
      [...readFileSync(file, "utf8").matchAll(/from\s*["']((?:\.\.\/)+store\/[^"']+)["']/g)].map((m) => `${relative(root, file)}: ${m[1]}`),
    );
    expect(sources(join(root, "src/features")).length).toBeGreaterThan(10);
    expect(offenders).toEqual([]);
  });
});
