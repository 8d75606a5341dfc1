import { describe, expect, it } from "vitest";
import { freePort } from "../helpers/process.js";
import { sqliteOf, startTestServer, tempDir } from "../helpers/server.js";

// The audit rows and the outbox's events are written a few milliseconds after the act, batched
// (src/core/activity/writes.ts): a read of the trail sees an act the moment it was answered, a burst shares its
// writes, and a server stopped right after an act has written its rows before the store closed.

describe("audit and outbox rows written after the act", () => {
  it("a read of the trail right after an act finds it; a burst of proposals is all there; a stop writes what is queued", async () => {
    const home = tempDir();
    const ts = await startTestServer({ home });
    const admin = await ts.clientIn("trail");
    // A receiver at a port nothing listens on: every event stays owed.
    await admin.call("notify/add", { name: "nobody", url: `http://127.0.0.1:${await freePort()}/hook`, events: ["proposal"] });
    await admin.call("run/create", { alias: "r" });
    const { path } = await admin.call("proposal/create", { run: "r", tool: "sh", command: "echo one" });
    const { events } = await admin.call("audit/list", { since: 0 });
    expect(events.map((e) => [e.action, e.path])).toContainEqual(["proposal", path]);

    // Fifty at once: each one's audit row and event, none lost to the batching.
    const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => admin.call("proposal/create", { run: "r", tool: "sh", command: `echo ${i}` })));
    const listed = new Set((await admin.call("audit/list", { since: 0 })).events.filter((e) => e.action === "proposal").map((e) => e.path));
    for (const p of burst) expect(listed.has(p.path)).toBe(true);

    // The last act, then the server stops at once: its rows are stored before the store closes.
    const last = await admin.call("proposal/create", { run: "r", tool: "sh", command: "echo last" });
    const sqlite = sqliteOf(ts.server);
    await ts.stop();
    expect(sqlite.open).toBe(false);
    const again = await startTestServer({ home });
    try {
      const rows = sqliteOf(again.server).prepare("SELECT action, path FROM audit WHERE path = ?").all(last.path);
      expect(rows).toEqual([{ action: "proposal", path: last.path }]);
      const events = sqliteOf(again.server).prepare("SELECT count(*) FROM notify_events").pluck().get() as number;
      expect(events).toBe(52);
    } finally {
      await again.stop();
    }
  });
});
