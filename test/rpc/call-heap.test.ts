import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { rpcCallProgram } from "../../bench/rpc-call-program.js";
import { tempDir } from "../helpers/server.js";

/**
 * A speed trick's guard (issue 58), measured as bench/rpc-call.ts measures it: the heap a `stream` call allocates
 * through RpcHost, in a node process of its own whose semi-spaces hold the measured round (no collection falls in
 * it), so the figure is the same on a loaded machine. Over src/ through tsx it is about 6.2 KB a call; the
 * handler's context built with a spread of the shared fields instead of copying them key by key (rpc-host.ts) makes
 * it about 8.5 KB, and other per-call objects added on the path show here as well.
 */
const BOUND = 7_000;

describe("a stream call's allocations through RpcHost", () => {
  it(`stay under ${BOUND} bytes a call`, () => {
    const src = fileURLToPath(new URL("../../src", import.meta.url));
    const file = join(tempDir("spool-call-heap-"), "program.mjs");
    writeFileSync(file, rpcCallProgram(src, "ts", 4000));
    const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", "--max-semi-space-size=128", "--min-semi-space-size=128", file], {
      encoding: "utf8",
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
    });
    const { bytes } = JSON.parse(out.trim().split("\n").at(-1)!) as { bytes: number };
    // A figure this low means the measure broke (a collection in the round), not that calls got cheaper.
    expect(bytes).toBeGreaterThan(1_000);
    expect(bytes).toBeLessThan(BOUND);
  }, 60_000);
});
