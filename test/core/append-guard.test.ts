import { describe, expect, it } from "vitest";
import type { CoreDeps } from "../../src/core/deps.js";
import { ChannelAppends } from "../../src/core/lifecycle/append.js";
import { Lifecycle } from "../../src/core/lifecycle/index.js";
import type { Owners } from "../../src/core/producers/owners.js";
import type { ProducerRegistry } from "../../src/core/producers/registry.js";
import type { RunnerRegistry } from "../../src/core/runners/registry.js";
import type { WatcherHub } from "../../src/core/streams/watchers.js";

/**
 * A speed trick's guard (issue 58): a stream chunk reaches the appends' `append` with no call in between
 * (bench/history/README.md "stream append"). The Lifecycle offers the appends' own method bound, not a method of its own
 * that calls it; wrapping it again fails here.
 */
describe("the hot path's append is the appends' own method", () => {
  const lifecycle = new Lifecycle(
    { repos: {}, config: {}, log: {} } as unknown as CoreDeps,
    {} as ProducerRegistry,
    {} as Owners,
    {} as RunnerRegistry,
    {} as WatcherHub,
  );

  it("Lifecycle.append is ChannelAppends.prototype.append bound, not a wrapper", () => {
    expect(lifecycle.append.name).toBe(`bound ${ChannelAppends.prototype.append.name}`);
    expect(Object.hasOwn(lifecycle, "append")).toBe(true);
    expect("append" in Lifecycle.prototype).toBe(false);
  });

  it("the check can fail: a method that calls the appends is not the bound one", () => {
    const wrapped = { append: (...args: Parameters<ChannelAppends["append"]>) => lifecycle.append(...args) };
    expect(wrapped.append.name).not.toBe(`bound ${ChannelAppends.prototype.append.name}`);
  });
});
