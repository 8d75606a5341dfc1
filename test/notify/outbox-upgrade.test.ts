import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SCHEMA_MIGRATIONS } from "../../migrations/index.js";
import { factsOf } from "../../src/protocol/views.js";
import { type MigrationSet, migrateToLatest } from "../../src/store/migrator.js";
import { openStore } from "../../src/store/sqlite/database.js";
import { freePort, spawnServe } from "../helpers/process.js";
import { type Receiver, signedBy, startReceiver } from "../helpers/receiver.js";
import { tempDir } from "../helpers/server.js";

// Migration 015 stores each event's body once (notify_events) and a short row per receiver (notify_deliveries).
// Deliveries a database at 014 still owed move over with the id and body they were first sent with, and a real
// `spool serve` on the upgraded database delivers them.

const receivers: Receiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.close();
});

const upTo014: MigrationSet = Object.fromEntries(Object.entries(SCHEMA_MIGRATIONS).filter(([name]) => name < "015"));

describe("the outbox of a database from before migration 015", () => {
  it("keeps what was owed: delivered after the upgrade with its delivery id and body, then nothing is left", async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const home = tempDir();
    const store = openStore(join(home, "spool.db"));
    await migrateToLatest(store, upTo014);
    const body = (delivery: string) =>
      JSON.stringify({
        event: "proposal",
        delivery,
        at: 1_700_000_000_000,
        project: "demo",
        run: "run-1",
        path: "log://1/sh/make",
        facts: factsOf({ tool: "sh", command: "make" }),
        proposedBy: "alice via spool-cli",
        decision: null,
        finished: null,
        url: null,
        text: "Spool: a command waits for a decision in demo/run-1",
      });
    store.sqlite
      .prepare(
        "INSERT INTO notify_targets (id, name, url, secret, events, format, projects, created_by, created_at) VALUES (1, 'hook', ?, 's3cret', '[\"proposal\"]', 'json', NULL, 'admin', 0)",
      )
      .run(receiver.url);
    const ids = ["6f1c2a9e-0000-4000-8000-000000000001", "6f1c2a9e-0000-4000-8000-000000000002"];
    for (const id of ids)
      store.sqlite
        .prepare(
          "INSERT INTO notify_outbox (target_id, delivery, event, payload, attempts, next_at, claimed_until, created_at) VALUES (1, ?, 'proposal', ?, 1, 0, 0, ?)",
        )
        .run(id, body(id), Date.now());
    await store.close();

    const serve = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    try {
      const got = await receiver.waitFor(2, 15_000);
      expect(got.map((r) => r.headers["x-spool-delivery"]).sort()).toEqual(ids);
      for (const r of got) {
        expect(signedBy(r.body, r.headers["x-spool-signature"], "s3cret")).toBe(true);
        expect(JSON.parse(r.body)).toEqual(JSON.parse(body(r.headers["x-spool-delivery"] as string)));
      }
    } finally {
      await serve.stop();
    }
    const after = openStore(join(home, "spool.db"));
    try {
      const count = (table: string) => (after.sqlite.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number) ?? 0;
      expect(count("notify_deliveries")).toBe(0);
      expect(count("notify_events")).toBe(0);
      expect(after.sqlite.prepare("SELECT name FROM sqlite_master WHERE name = 'notify_outbox'").get()).toBeUndefined();
    } finally {
      await after.close();
    }
  });
});
