import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/server.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => existsSync(p));
if (!analyze) console.warn("skipping the systemd unit check: systemd-analyze is not installed here");

/** examples/spool.service as shipped; test/packages/install.test.ts also verifies it pointed at an installed spool. */
describe.skipIf(!analyze)("examples/spool.service", () => {
  const verify = async (unit: string) => {
    const dir = tempDir("spool-unit-");
    try {
      const file = join(dir, "spool.service");
      writeFileSync(file, unit);
      return await run(analyze!, ["verify", file], { timeout: 30_000 }).then(
        ({ stderr }) => ({ ok: true, stderr }),
        (error: { stderr: string }) => ({ ok: false, stderr: error.stderr }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // systemd-analyze checks that ExecStart's program exists: an executable stands in for where npm puts spool.
  const shipped = () => readFileSync(join(repo, "examples", "spool.service"), "utf8").replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`);

  it("passes `systemd-analyze verify` with no warning", async () => {
    expect(await verify(shipped())).toEqual({ ok: true, stderr: "" });
  });

  it("the check can fail: an unknown key is reported", async () => {
    const result = await verify(shipped().replace("[Service]", "[Service]\nNotAKey=1"));
    expect(result.stderr).toContain("Unknown key");
  });
});
