import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SERVE_SPEC } from "../../src/cli/commands/serve.js";

/** docs/cli.md's "every setting" table names every flag spool serve takes (--log-format was missing). */
describe("docs/cli.md settings", () => {
  it("every option of spool serve is a row of the table", () => {
    const doc = readFileSync(new URL("../../docs/cli.md", import.meta.url), "utf8");
    const table = doc.slice(doc.indexOf("| setting | flag |"));
    const flags = Object.keys(SERVE_SPEC.options).filter((name) => name !== "help");
    expect(flags.length).toBeGreaterThan(5);
    const missing = flags.filter((name) => !table.includes(`\`--${name}`));
    expect(missing).toEqual([]);
  });
});
