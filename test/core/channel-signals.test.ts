import { describe, expect, it } from "vitest";
import { ChannelSignals } from "../../src/core/streams/channel-signals.js";

describe("ChannelSignals: the agent's waits wake on a channel's events, not on a timer", () => {
  it("a wait armed on channels returns at the first chunk of any of them, and is then disarmed", async () => {
    const signals = new ChannelSignals();
    const wait = signals.arm([1, 2], 60_000);
    signals.touch(3, "data");
    signals.touch(2, "data");
    expect(await wait.changed).toBe("data");
    expect(signals.pending).toBe(0);
  });

  it("a wait for ends only is not woken by chunks, and is by the end", async () => {
    const signals = new ChannelSignals();
    const wait = signals.arm([7], 60_000, { data: false });
    let woke: string | null | undefined;
    void wait.changed.then((change) => {
      woke = change;
    });
    for (let i = 0; i < 100; i++) signals.touch(7, "data");
    await Promise.resolve();
    expect(woke).toBeUndefined();
    signals.touch(7, "end");
    expect(await wait.changed).toBe("end");
    expect(signals.pending).toBe(0);
  });

  it("returns null after its time, on abort, or when cancelled, leaving nothing armed", async () => {
    const signals = new ChannelSignals();
    expect(await signals.arm([1], 5).changed).toBeNull();
    const controller = new AbortController();
    const aborted = signals.arm([1], 60_000, { signal: controller.signal });
    controller.abort();
    expect(await aborted.changed).toBeNull();
    const cancelled = signals.arm([1, 2], 60_000);
    cancelled.cancel();
    expect(await cancelled.changed).toBeNull();
    const already = new AbortController();
    already.abort();
    expect(await signals.arm([1], 60_000, { signal: already.signal }).changed).toBeNull();
    expect(signals.pending).toBe(0);
  });
});
