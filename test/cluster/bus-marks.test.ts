import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { busKey } from "../../src/cluster/bus-auth.js";
import { PostgresBus } from "../../src/cluster/postgres-bus.js";
import type { Logger } from "../../src/logger.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/postgres.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";

const TOKEN = "team-token-0123456789abcdef0123456789abcdef";
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Chunk marks of a server alone on its database, and when a second server starts. */
describeWithInfra("postgres", "the cluster bus's chunk marks", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let store: PostgresStore;
  /** A plain session listening on the bus's channel: it is no server (it holds no alive lock), it only sees what is sent. */
  let listener: pg.Client;
  const payloads: string[] = [];
  let arrived: (() => void) | null = null;
  const buses: PostgresBus[] = [];
  const marksGot = new Map<number, number>();

  const bus = async (id: number) => {
    const made = new PostgresBus(db.url, store.pool, id, quiet, { key: busKey(TOKEN), pollMs: 60_000 });
    await made.start({
      message: async () => undefined,
      chunk: async (entry, seq) => void marksGot.set(entry, seq),
      gone: async () => undefined,
    });
    buses.push(made);
    return made;
  };
  /** Waits (up to 10 s) until the listener has a payload `match` accepts; returns the payloads up to it. */
  const until = (match: (payload: string) => boolean) =>
    new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no such payload among ${JSON.stringify(payloads)}`)), 10_000);
      const check = () => {
        const at = payloads.findIndex(match);
        if (at === -1) return;
        clearTimeout(timer);
        arrived = null;
        resolve(payloads.slice(0, at + 1));
      };
      arrived = check;
      check();
    });

  beforeAll(async () => {
    db = await freshDatabase();
    store = await openPostgresStore(db.url);
    await migrateToLatest(store, MIGRATIONS_DIR);
    listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    listener.on("notification", (n) => {
      if (n.payload) payloads.push(n.payload);
      arrived?.();
    });
    await listener.query("LISTEN spool_cluster");
  });
  afterAll(async () => {
    for (const b of buses) await b.close();
    await listener?.end();
    await store?.close();
    await db?.drop();
  });

  it("a server alone sends none; a server that starts gets the last mark of each channel appended to before, then every new one", async () => {
    const one = await bus(201);
    one.chunk(7, 1);
    one.chunk(8, 1);
    one.chunk(7, 2);
    // Sent after any mark of the chunks before it (publish keeps that order): no mark was.
    one.publish({ t: "notify", project: 1, method: "run/progress", params: { delta: "after the chunks" } });
    const alone = await until((p) => p.startsWith("i:201:"));
    expect(alone.filter((p) => p.startsWith("c:"))).toEqual([]);

    const two = await bus(202);
    // Server 202 said hello when it began listening; 201 then sends what it held: each channel's last seq.
    await until((p) => p === "h:202");
    const held = await until((p) => p.startsWith("c:201:"));
    expect(held.at(-1)!.slice("c:201:".length).split(",").sort()).toEqual(["7.2", "8.1"]);
    await expect.poll(() => marksGot.get(7), { timeout: 10_000 }).toBe(2);
    expect(marksGot.get(8)).toBe(1);

    // From now on every turn's marks go out.
    one.chunk(7, 3);
    await until((p) => p === "c:201:7.3");
    await expect.poll(() => marksGot.get(7), { timeout: 10_000 }).toBe(3);
    // Server 202 was not alone when it started: its marks go out at once.
    two.chunk(9, 1);
    await until((p) => p === "c:202:9.1");
  });
});
