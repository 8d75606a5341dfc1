import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { warmEntryGet } from "../../../src/features/entries/get.js";
import { entriesPlugin } from "../../../src/features/entries/index.js";
import { MIGRATIONS_DIR } from "../../../src/server.js";
import { openStore } from "../../../src/store/database.js";
import { migrateToLatest } from "../../../src/store/migrator.js";
import { createRepositories } from "../../../src/store/repositories.js";
import { tempDir } from "../../helpers/server.js";

describe("the warm-up of entry/get at start", () => {
  it("runs the handler on valid samples of entry/get's params and result (the paths real tails and slices take) and reads nothing of the store", async () => {
    expect(await warmEntryGet()).toBe(true);
    const store = openStore(join(tempDir(), "spool.db"));
    try {
      await migrateToLatest(store, MIGRATIONS_DIR);
      const repos = createRepositories(store);
      expect(await warmEntryGet({ repos })).toBe(true);
      expect(await store.db.selectFrom("entries").select("id").execute()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("is run by the entries plugin once the server listens", () => {
    const hooks: string[] = [];
    const app = { scheme() {}, method() {}, on: (hook: string) => hooks.push(hook) };
    entriesPlugin.setup(app as never);
    expect(hooks).toEqual(["server:started"]);
  });
});
