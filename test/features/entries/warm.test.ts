import { describe, expect, it } from "vitest";
import { warmEntryGet } from "../../../src/features/entries/get.js";
import { entriesPlugin } from "../../../src/features/entries/index.js";

describe("the warm-up of entry/get at start", () => {
  it("parses valid samples of entry/get's params and result (the paths real tails and slices take), and the entries plugin runs it once the server listens", () => {
    expect(warmEntryGet()).toBe(true);
    const hooks: string[] = [];
    const app = { scheme() {}, method() {}, on: (hook: string) => hooks.push(hook) };
    entriesPlugin.setup(app as never);
    expect(hooks).toEqual(["server:started"]);
  });
});
