import { describe, expect, it } from "vitest";
import { RUN_TRANSITIONS, runTransition } from "../../src/core/lifecycle/run-transitions.js";
import { RUN } from "../../src/protocol/status.js";

/** The run's budget table, cell by cell: every status a run can have, for each operation. */
describe("run transitions (budgets)", () => {
  const statuses = Object.entries(RUN) as [keyof typeof RUN, number][];

  it("pause: an open run (queued, running, waiting) is paused; a paused or ended one is refused", () => {
    const paused = statuses.filter(([, status]) => runTransition(status, "pause") === RUN.paused).map(([name]) => name);
    expect(paused.sort()).toEqual(["queued", "running", "waiting"]);
    for (const name of ["paused", "done", "aborted", "failed"] as const) expect(runTransition(RUN[name], "pause"), name).toBeUndefined();
  });

  it("resume: only a paused run goes on (running); every other status is refused", () => {
    for (const [name, status] of statuses) expect(runTransition(status, "resume"), name).toBe(name === "paused" ? RUN.running : undefined);
  });

  it("a refusal is CONFLICT for both operations", () => {
    expect(RUN_TRANSITIONS.pause.refused).toBe("CONFLICT");
    expect(RUN_TRANSITIONS.resume.refused).toBe("CONFLICT");
  });
});
