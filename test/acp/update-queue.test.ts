import { describe, expect, it } from "vitest";
import { type Editor, UpdateQueue } from "../../src/acp/updates.js";
import type { Logger } from "../../src/logger.js";

/** An editor that never reads: every update it is given waits for good. */
function stalledEditor(): Editor & { updates: number } {
  const editor = {
    name: "stalled",
    terminal: true,
    mayDecide: true,
    updates: 0,
    update: () => {
      editor.updates++;
      return new Promise<void>(() => {});
    },
    requestPermission: () => new Promise<never>(() => {}),
  };
  return editor;
}

describe("a session's update queue when the editor does not read", () => {
  it("holds at most 128 MiB of command output, then refuses output but still takes small updates", () => {
    const warnings: string[] = [];
    const note = (message: string) => void warnings.push(message);
    const log: Logger = { debug: note, info: note, warn: note, error: note };
    const queue = new UpdateQueue("s1", stalledEditor(), log);
    const chunk = 64 * 1024;
    let taken = 0;
    while (queue.enqueue(async () => {}, chunk)) taken++;
    // The first task went out at once (and never came back); the rest wait, up to the cap.
    expect(taken * chunk).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(taken * chunk).toBeLessThanOrEqual(128 * 1024 * 1024 + chunk);
    expect(queue.enqueue(async () => {}, chunk)).toBe(false);
    // A tool call's status (no output) still gets in line.
    expect(queue.enqueue(async () => {})).toBe(true);
    expect(warnings.filter((w) => w.includes("not reading"))).toHaveLength(1);
    queue.close();
    expect(queue.enqueue(async () => {})).toBe(false);
  });
});
