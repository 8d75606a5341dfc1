import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/server.js";

/**
 * A speed trick's guard (as test/rpc/call-heap's): the heap one reading of a producer's log entry allocates, in a
 * node process of its own whose semi-spaces hold the measured calls (no collection falls in them), so the figure is
 * the same on a loaded machine. These run several times for every proposal, decision and listing. An object literal
 * that begins with a spread (`{ ...decisionAndEnd(a), id, … }`) and then names more properties gets a map of its own
 * for each one on Node 20: producerFromRow allocated about 36 KB a call that way and took 120-160 µs (a proposal's
 * server CPU went up by a third), against about 3 KB and 2.5 µs with the spread last. Over src/ through tsx: about
 * 3.0, 4.2 and 5.7 KB.
 */
const BOUND = 10_000;

const program = (src: string) => `
const { producerFromRow } = await import(${JSON.stringify(`${src}/store/producer-row.ts`)});
const { producerWire } = await import(${JSON.stringify(`${src}/store/views.ts`)});
const { producerView } = await import(${JSON.stringify(`${src}/protocol/views.ts`)});
const attrs = { tool: "sh", command: "echo hi", root: "/r", cwd: "/r", env: { N: "1" }, slug: "echo-hi", readOnly: false, sandbox: "workspace-write", sandboxNetwork: false, network: "none", proposedBy: "agent via cli", defaultRunner: "local", decision: "accept", resolvedBy: "alice via web", outcome: "completed", status: 200, exit_code: 0 };
const row = { id: 1, run_id: 1, path: "log://sh/echo-hi", scheme: "log", turn: 1, status: 200, attributes: JSON.stringify(attrs), body: "", streamed: 0, producer_id: null, channel: null, bytes: 0, newlines: 0, ends_with_newline: 0, last_seq: 0, created_at: 1, updated_at: 1, proposed_by: "agent" };
const wire = { path: row.path, status: 200, turn: 1, attributes: attrs };
const out = {};
for (const [name, f] of [["producerFromRow", () => producerFromRow(row)], ["producerWire", () => producerWire(row, [])], ["producerView", () => producerView(wire, [])]]) {
  for (let i = 0; i < 5000; i++) f();
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 2000; i++) f();
  out[name] = Math.round((process.memoryUsage().heapUsed - before) / 2000);
}
console.log(JSON.stringify(out));
`;

describe("reading a producer's log entry", () => {
  it(`allocates under ${BOUND} bytes a call (producerFromRow, producerWire, producerView)`, () => {
    const src = fileURLToPath(new URL("../../src", import.meta.url));
    const file = join(tempDir("spool-producer-heap-"), "program.mjs");
    writeFileSync(file, program(src));
    const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", "--max-semi-space-size=128", "--min-semi-space-size=128", file], {
      encoding: "utf8",
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
    });
    const bytes = JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, number>;
    for (const [name, n] of Object.entries(bytes)) {
      // A figure this low means the measure broke (a collection in the round), not that reading got cheaper.
      expect(n, name).toBeGreaterThan(500);
      expect(n, name).toBeLessThan(BOUND);
    }
    expect(Object.keys(bytes)).toEqual(["producerFromRow", "producerWire", "producerView"]);
  }, 60_000);
});
