import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Deadlines, MAX_TIMER_MS } from "../../src/core/activity/deadlines.js";
import type { CoreDeps } from "../../src/core/deps.js";

// A deadline longer than one timer can wait (Node caps a timer at 2^31 - 1 ms, 24.8 days) expires at its time, not
// at the cap: with a fake clock, a 30-day deadline.

const DAY = 24 * 60 * 60_000;

describe("a deadline of any length", () => {
  beforeEach(() => vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) }));
  afterEach(() => vi.useRealTimers());

  it("of 30 days rejects at 30 days, not at 24.8", async () => {
    const rejected: number[] = [];
    const deps = { config: { decisionTimeoutMs: 30 * DAY }, log: { info() {}, warn() {}, error() {} } } as unknown as CoreDeps;
    const deadlines = new Deadlines(deps, async () => {
      rejected.push(Date.now());
    });
    const start = Date.now();
    deadlines.watch({ id: 1, name: "p", root: "/tmp" }, "r", 7, "log://turn_1/sh/x", start);
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS + 1_000);
    expect(rejected).toEqual([]);
    await vi.advanceTimersByTimeAsync(30 * DAY - (MAX_TIMER_MS + 1_000) - 1);
    expect(rejected).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(rejected).toEqual([start + 30 * DAY]);
    deadlines.stop();
  });

  it("decided before it fires, it never rejects", async () => {
    const rejected: number[] = [];
    const deps = { config: { decisionTimeoutMs: 30 * DAY }, log: { info() {}, warn() {}, error() {} } } as unknown as CoreDeps;
    const deadlines = new Deadlines(deps, async () => {
      rejected.push(Date.now());
    });
    deadlines.watch({ id: 1, name: "p", root: "/tmp" }, "r", 8, "log://turn_1/sh/y", Date.now());
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS + 1_000);
    deadlines.decided(8);
    await vi.advanceTimersByTimeAsync(10 * DAY);
    expect(rejected).toEqual([]);
  });
});
