import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ActivityWrites } from "../../src/core/activity/writes.js";
import { migrateToLatest } from "../../src/store/migrator.js";
import { createRepositories } from "../../src/store/repositories.js";
import { openStore } from "../../src/store/sqlite/database.js";
import { tempDir } from "../helpers/server.js";

const row = (action: string) => ({
  at: Date.now(),
  action,
  principal: "admin",
  transport: null,
  client: null,
  project: null,
  run: null,
  path: null,
  detail: "{}",
});

/**
 * The audit and outbox rows queued behind an answer: a write that fails (the store closed under them, as a server
 * stops) fails the rows it held, to their callers, and never as an unhandled rejection; the rows after it are still
 * written once the store can take them.
 */
describe("ActivityWrites", () => {
  it("a write that throws fails the rows it held, to their callers; the rows after them are written", async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    await migrateToLatest(store);
    const repos = createRepositories(store);
    let throwOnce = false;
    const writes = new ActivityWrites({
      repos: {
        ...repos,
        activity: {
          writeActivity: (audit: Parameters<typeof repos.activity.writeActivity>[0], events: Parameters<typeof repos.activity.writeActivity>[1]) => {
            if (throwOnce) {
              throwOnce = false;
              throw new Error("thrown, not rejected");
            }
            return repos.activity.writeActivity(audit, events);
          },
        },
      },
    } as unknown as ConstructorParameters<typeof ActivityWrites>[0]);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      await writes.audit(row("before"));
      throwOnce = true;
      const failed = await Promise.allSettled([writes.audit(row("lost-1")), writes.audit(row("lost-2"))]);
      expect(failed.map((f) => (f.status === "rejected" ? String(f.reason) : f.status))).toEqual([
        "Error: thrown, not rejected",
        "Error: thrown, not rejected",
      ]);
      await writes.audit(row("after"));
      const actions = (store.sqlite.prepare("SELECT action FROM audit ORDER BY id").all() as { action: string }[]).map((r) => r.action);
      expect(actions).toEqual(["before", "after"]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await store.close();
    }
  }, 10_000);

  it("rows written on a store closed under them (a server stopping) are refused as a rejection, not thrown", async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    await migrateToLatest(store);
    const repos = createRepositories(store);
    const writes = new ActivityWrites({ repos } as unknown as ConstructorParameters<typeof ActivityWrites>[0]);
    await writes.stop();
    store.sqlite.close();
    // After stop each row is written at once: on the closed connection that is a refusal the caller gets.
    await expect(writes.audit(row("late"))).rejects.toThrow(/not open/);
    await store.close().catch(() => undefined);
  }, 10_000);
});
