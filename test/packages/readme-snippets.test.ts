import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { infraRequired } from "../helpers/infra.js";
import { tempDir } from "../helpers/server.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
// The snippets live in the production guide the README links to (docs/production.md).
const readme = readFileSync(join(repo, "docs", "production.md"), "utf8");
const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { name: string; version: string };
const promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => existsSync(p));
if (!promtool && !infraRequired) console.warn("skipping the Prometheus snippet check: promtool is not installed (apt-get install prometheus)");

/** The first fenced block of `lang` after `marker` in docs/production.md. */
function block(marker: string, lang: string): string {
  const at = readme.indexOf(marker);
  expect(at, `docs/production.md has "${marker}"`).toBeGreaterThanOrEqual(0);
  const start = readme.indexOf(`\`\`\`${lang}\n`, at);
  return readme.slice(start + lang.length + 4, readme.indexOf("```", start + 3));
}

/** Issue 48, point 8: README's snippets are what works — checked here, run where they can be. */
describe("README's install and Prometheus snippets", () => {
  it.skipIf(!promtool && !infraRequired)("the scrape config passes `promtool check config`, and the check can fail (~ in credentials_file)", async () => {
    if (!promtool) throw new Error("SPOOL_TEST_INFRA=required: promtool is not installed");
    const yaml = block("`GET /metrics` is Prometheus's text format", "yaml");
    const dir = tempDir("spool-prometheus-");
    const file = join(dir, "prometheus.yml");
    writeFileSync(file, yaml);
    writeFileSync(join(dir, "spool-token"), "0123456789abcdef0123456789abcdef\n", { mode: 0o600 });
    await expect(run(promtool, ["check", "config", file])).resolves.toBeDefined();
    writeFileSync(file, yaml.replace(/credentials_file: \S+/, "credentials_file: ~/.spool/token"));
    await expect(run(promtool, ["check", "config", file])).rejects.toThrow(/FAILED.*~\/.spool\/token/);
  });

  it("the install names no registry package: a clone, then the tarball npm pack makes (test/packages/install.test.ts installs it)", () => {
    const sh = block("### Install", "sh");
    expect(sh).not.toMatch(/npx spool|npm install -g spool\b/);
    expect(sh).toContain("npm pack");
    expect(sh).toContain(`npm install -g ./${pkg.name}-${pkg.version}.tgz`);
  });
});
