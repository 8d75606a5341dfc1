import { constants, PerformanceObserver } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { Scavenger } from "../../src/server/scavenger.js";

const MB = 1024 * 1024;

describe("the scavenger (a young-generation collection per N bytes of binary frames)", () => {
  it("collects once per `everyBytes` received, counting across frames, and never when off", () => {
    let collections = 0;
    const scavenger = new Scavenger(2 * MB, () => collections++);
    for (let i = 0; i < 31; i++) scavenger.received(64 * 1024);
    expect(collections).toBe(0);
    scavenger.received(64 * 1024);
    expect(collections).toBe(1);
    for (let i = 0; i < 64; i++) scavenger.received(64 * 1024);
    expect(collections).toBe(3);
    const off = new Scavenger(0, () => collections++);
    for (let i = 0; i < 1000; i++) off.received(64 * 1024);
    expect(collections).toBe(3);
  });

  it("by default runs V8's young-generation collection, which frees the received buffers", async () => {
    const minor: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries())
        if ((entry as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor.push(entry.startTime);
    });
    observer.observe({ entryTypes: ["gc"] });
    try {
      const scavenger = new Scavenger(1 * MB);
      const before = performance.now();
      scavenger.received(1 * MB);
      while (!minor.some((t) => t >= before)) await new Promise((resolve) => setImmediate(resolve));
      expect(minor.some((t) => t >= before)).toBe(true);
    } finally {
      observer.disconnect();
    }
  });
});
