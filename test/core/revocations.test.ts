import { describe, expect, it } from "vitest";
import { RecentRevocations } from "../../src/core/revocations.js";

/** The names a server knows were revoked lately (a proposal of one stored late withdraws itself): kept a while, bounded. */
describe("RecentRevocations", () => {
  it("holds a name for ten minutes from its last revocation", () => {
    const recent = new RecentRevocations();
    recent.add("late", 0);
    expect(recent.has("late", 10 * 60_000 - 1)).toBe(true);
    expect(recent.has("late", 10 * 60_000)).toBe(false);
    expect(recent.has("other", 0)).toBe(false);
    // Revoked again (the name given anew, then revoked): counted from then.
    recent.add("late", 5 * 60_000);
    expect(recent.has("late", 14 * 60_000)).toBe(true);
  });

  it("keeps at most the last 1,000 names, dropping the oldest and what aged out", () => {
    const recent = new RecentRevocations();
    for (let i = 0; i < 1_500; i++) recent.add(`p${i}`, i);
    expect(recent.has("p499", 1_500)).toBe(false);
    expect(recent.has("p500", 1_500)).toBe(true);
    expect(recent.has("p1499", 1_500)).toBe(true);
    recent.add("fresh", 10 * 60_000 + 1_500);
    // Everything older than ten minutes went with that add.
    expect(recent.has("p1499", 10 * 60_000 + 1_500)).toBe(false);
    expect(recent.has("fresh", 10 * 60_000 + 1_500)).toBe(true);
  });
});
