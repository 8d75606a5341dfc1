// Runs paused at their budget are told to receivers (event "budget"). A receiver that took every event there was
// (what `notify add` without --events stores, in this order) takes this one too; one that chose fewer keeps its choice.
import type { SchemaMigration } from "./columns.js";

const ALL_BEFORE = JSON.stringify(["proposal", "decided", "finished", "expired"]);
const ALL_NOW = JSON.stringify(["proposal", "decided", "finished", "expired", "budget"]);

export const notifyBudgetEvent: SchemaMigration = {
  async up(db) {
    await db.updateTable("notify_targets").set({ events: ALL_NOW }).where("events", "=", ALL_BEFORE).execute();
  },
};
