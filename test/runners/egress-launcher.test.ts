import { spawnSync } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { egressDir, egressLauncher } from "../../src/runners/sandbox/egress.js";
import { tempDir } from "../helpers/server.js";

/**
 * The egress launcher's shell around a stand-in bwrap (a script that waits for its go byte on fd 4, as bwrap's
 * --block-fd does, then says it ran): the real proxy beside it, or a proxy that exits without its ready byte.
 */
const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function standIn(): { bwrap: string; tmp: string } {
  const dir = tempDir("spool-egress-launcher-");
  const tmp = tempDir("spool-egress-launcher-tmp-");
  made.push(dir, tmp);
  const bwrap = join(dir, "bwrap");
  writeFileSync(bwrap, `#!/bin/sh\nread go <&4; [ "$go" = x ] || exit 99\necho "the command ran"\n`, { mode: 0o755 });
  return { bwrap, tmp };
}

it("starts the proxy, releases the command once the proxy is ready, and leaves nothing in $TMPDIR", () => {
  const { bwrap, tmp } = standIn();
  const dir = egressDir();
  made.push(dir.path);
  const launch = egressLauncher(dir, { allow: [] }, bwrap, [], []);
  const result = spawnSync(launch.file, launch.args, { env: { PATH: "/usr/bin:/bin", TMPDIR: tmp, ...launch.env }, encoding: "utf8", timeout: 30_000 });
  expect(result.stderr).toBe("");
  expect(result.stdout).toBe("the command ran\n");
  expect(result.status).toBe(0);
  expect(readdirSync(tmp)).toEqual([]);
});

it("a proxy that exits without its ready byte: the command never runs, the launch says why and exits 125", () => {
  const { bwrap, tmp } = standIn();
  const dir = egressDir();
  made.push(dir.path);
  const launch = egressLauncher(dir, { allow: [] }, bwrap, [], []);
  // $0 of the script is the node the proxy runs on: /bin/false starts and exits at once, writing nothing.
  const args = [...launch.args];
  args[2] = "/bin/false";
  const result = spawnSync(launch.file, args, { env: { PATH: "/usr/bin:/bin", TMPDIR: tmp, ...launch.env }, encoding: "utf8", timeout: 30_000 });
  expect(result.stdout).toBe("");
  expect(result.stderr).toBe("spool: the egress proxy did not start\n");
  expect(result.status).toBe(125);
  expect(readdirSync(tmp)).toEqual([]);
});
