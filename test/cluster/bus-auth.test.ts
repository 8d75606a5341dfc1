import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BusMessage } from "../../src/cluster/bus.js";
import { busKey, signEvent, verifyEvent } from "../../src/cluster/bus-auth.js";
import { PostgresBus } from "../../src/cluster/postgres-bus.js";
import type { Logger } from "../../src/logger.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/postgres.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";

const TOKEN = "team-token-0123456789abcdef0123456789abcdef";

describe("a cluster row's MAC", () => {
  const key = busKey(TOKEN);
  const row = { server_id: 1, seq: 7, created_at: 1_700_000_000_000, body: '{"t":"kick","to":2,"run":5}' };

  it("is derived from the token, never the token itself, and checks only the row it was made for", () => {
    expect(key.equals(Buffer.from(TOKEN))).toBe(false);
    const mac = signEvent(key, row);
    expect(mac).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyEvent(key, row, mac)).toBe(true);
    for (const changed of [{ server_id: 3 }, { seq: 8 }, { created_at: row.created_at + 1 }, { body: '{"t":"kick","to":3,"run":5}' }]) {
      expect(verifyEvent(key, { ...row, ...changed }, mac), JSON.stringify(changed)).toBe(false);
    }
    expect(verifyEvent(busKey("another-token-0123456789abcdef"), row, mac)).toBe(false);
    expect(verifyEvent(key, row, "")).toBe(false);
    expect(verifyEvent(key, row, null)).toBe(false);
    expect(verifyEvent(key, row, mac.toUpperCase())).toBe(false);
    // Fields are length-prefixed: moving a digit from one field to the next makes another MAC.
    expect(signEvent(key, { ...row, server_id: 17, seq: 1 })).not.toBe(signEvent(key, { ...row, server_id: 1, seq: 71 }));
  });
});

/** Two buses (servers 101 and 102) on one real database, and rows written by hand as someone with access to it would. */
describeWithInfra("postgres", "the cluster bus acts only on rows a server holding the token signed", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let store: PostgresStore;
  let writer: pg.Client;
  let one: PostgresBus;
  let two: PostgresBus;
  const logged: string[] = [];
  const received: { message: BusMessage; from: number }[] = [];
  let waiting: (() => void) | null = null;

  const logger = (into: string[] | null): Logger => ({
    debug: () => undefined,
    info: () => undefined,
    warn: (m) => into?.push(m),
    error: (m) => into?.push(m),
  });
  const bus = async (id: number, log: Logger) => {
    const made = new PostgresBus(db.url, store.pool, id, log, { key: busKey(TOKEN), pollMs: 60_000 });
    await made.start({
      message: async (message, from) => {
        if (id !== 102) return;
        received.push({ message, from });
        waiting?.();
      },
      chunk: async () => undefined,
      gone: async () => undefined,
    });
    return made;
  };
  /** Waits until server 102 has taken `count` messages in all. */
  const taken = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${count} messages arrived`)), 10_000);
      const check = () => {
        if (received.length < count) return;
        clearTimeout(timer);
        waiting = null;
        resolve();
      };
      waiting = check;
      check();
    });
  /** Inserts a row and notifies it as `from`'s, addressed to `to`, like the bus does. */
  const forge = async (row: { server_id: number; seq: number; body: string; created_at: number; mac: string }, from: number, to: number) => {
    const { rows } = await writer.query<{ id: string }>(
      "INSERT INTO cluster_events (server_id, seq, body, created_at, mac) VALUES ($1, $2, $3, $4, $5) RETURNING id",
      [row.server_id, row.seq, row.body, row.created_at, row.mac],
    );
    await writer.query("SELECT pg_notify('spool_cluster', $1)", [`e:${from}:${rows[0]!.id}:${to}`]);
  };
  const rowsOf = async (server: number) =>
    (
      await writer.query<{ server_id: string; seq: string; body: string; created_at: string; mac: string }>(
        "SELECT server_id, seq, body, created_at, mac FROM cluster_events WHERE server_id = $1 ORDER BY id",
        [server],
      )
    ).rows.map((r) => ({ server_id: Number(r.server_id), seq: Number(r.seq), body: r.body, created_at: Number(r.created_at), mac: r.mac }));

  /** Waits (up to 10 s) until `server`'s stored rows hold what `pick` looks for, and returns it. */
  const stored = async <T>(server: number, pick: (rows: Awaited<ReturnType<typeof rowsOf>>) => T | undefined): Promise<T> => {
    const until = Date.now() + 10_000;
    for (;;) {
      const found = pick(await rowsOf(server));
      if (found !== undefined) return found;
      if (Date.now() > until) throw new Error(`no stored row of server ${server} matched`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  beforeAll(async () => {
    db = await freshDatabase();
    store = await openPostgresStore(db.url);
    await migrateToLatest(store, MIGRATIONS_DIR);
    writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    one = await bus(101, logger(null));
    two = await bus(102, logger(logged));
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await writer?.end();
    await store?.close();
    await db?.drop();
  });

  it("a message one server publishes reaches the other, named as its sender's", async () => {
    one.publish({ t: "kick", to: 102, run: 1 });
    await taken(1);
    expect(received).toEqual([{ message: { t: "kick", to: 102, run: 1 }, from: 101 }]);
  });

  it("rows with a wrong MAC, none, another token's, a replayed or stale one or another addressee are dropped unread and logged once", async () => {
    const accept = JSON.stringify({
      t: "accept",
      to: 102,
      from: 101,
      id: 1,
      project: { id: 1, name: "x", root: "/x" },
      target: { run: "r", path: "log://turn_1/sh/x" },
      options: { resolver: null, resolvedBy: "forged cluster event" },
    });
    const row = { server_id: 101, seq: 1000, body: accept, created_at: Date.now() };
    await forge({ ...row, mac: "00".repeat(32) }, 101, 102);
    await forge({ ...row, seq: 1001, mac: "" }, 101, 102);
    await forge({ ...row, seq: 1002, mac: signEvent(busKey("another-token-0123456789abcdef"), { ...row, seq: 1002 }) }, 101, 102);
    // A genuine row of 101's written again and notified again: its seq was taken already.
    const genuine = await stored(101, (rows) => rows[0]);
    await forge(genuine, 101, 102);
    // A genuine row addressed to server 103, notified to 102.
    one.publish({ t: "kick", to: 103, run: 2 });
    const elsewhere = await stored(101, (rows) => rows.find((r) => r.body.includes('"to":103')));
    await forge(elsewhere, 101, 102);
    // A row signed well but notified as another server's.
    const mine = { server_id: 101, seq: 2000, body: JSON.stringify({ t: "kick", to: 102, run: 9 }), created_at: Date.now() };
    await forge({ ...mine, mac: signEvent(busKey(TOKEN), mine) }, 104, 102);
    // A row signed well, but ten minutes old (past the prune age: a replay of a row since pruned).
    const stale = { server_id: 101, seq: 3000, body: JSON.stringify({ t: "kick", to: 102, run: 10 }), created_at: Date.now() - 10 * 60_000 };
    await forge({ ...stale, mac: signEvent(busKey(TOKEN), stale) }, 101, 102);
    // Messages are taken in order: once this one is in, every row above was looked at.
    one.publish({ t: "kick", to: 102, run: 3 });
    await taken(2);
    expect(received.map((r) => r.message)).toEqual([
      { t: "kick", to: 102, run: 1 },
      { t: "kick", to: 102, run: 3 },
    ]);
    expect(two.dropped).toBe(7);
    // Logged once: the first drop, with its reason; the next ones are counted into the next line (a minute later).
    const drops = logged.filter((m) => m.includes("cluster_events"));
    expect(drops).toHaveLength(1);
    expect(drops[0]).toContain("dropped a row of cluster_events unread");
    expect(drops[0]).toContain("wrong MAC");
    expect(drops[0]).toContain("SPOOL_TOKEN_FILE");
  });

  it("the model's progress goes inside the NOTIFY, signed: it arrives in order with no row stored, and a forged or replayed one is dropped", async () => {
    const rowsBefore = (await rowsOf(101)).length;
    const start = received.length;
    const progress: BusMessage = { t: "notify", project: 1, method: "run/progress", params: { run: "r", turn: 1, loop: 1, delta: "hello: world" } };
    one.publish(progress);
    one.publish({ t: "kick", to: 102, run: 4 });
    await taken(start + 2);
    expect(received.slice(start).map((r) => r.message)).toEqual([progress, { t: "kick", to: 102, run: 4 }]);
    // Only the kick was stored.
    expect((await rowsOf(101)).length).toBe(rowsBefore + 1);
    const droppedBefore = two.dropped;
    const body = JSON.stringify({ t: "notify", project: 1, method: "run/progress", params: { run: "r", turn: 1, loop: 1, delta: "forged" } });
    await writer.query("SELECT pg_notify('spool_cluster', $1)", [`i:101:*:5000:${Date.now()}:${"00".repeat(32)}:${body}`]);
    // Signed with the right key but under a seq already taken: a replay.
    const replay = { server_id: 101, seq: 1, body, created_at: Date.now() };
    await writer.query("SELECT pg_notify('spool_cluster', $1)", [`i:101:*:1:${replay.created_at}:${signEvent(busKey(TOKEN), replay)}:${body}`]);
    one.publish({ t: "kick", to: 102, run: 5 });
    await taken(start + 3);
    expect(received.at(-1)!.message).toEqual({ t: "kick", to: 102, run: 5 });
    expect(two.dropped).toBe(droppedBefore + 2);
  });

  it("only run/progress notifications are taken inline: another message in a NOTIFY, even signed and fresh, is dropped (counted like any drop)", async () => {
    const start = received.length;
    const droppedBefore = two.dropped;
    const key = busKey(TOKEN);
    // Inline payloads are stored nowhere: a server started later could not tell a captured one by its seq.
    const inline = (seq: number, message: BusMessage) => {
      const row = { server_id: 101, seq, body: JSON.stringify(message), created_at: Date.now() };
      return `i:101:*:${seq}:${row.created_at}:${signEvent(key, row)}:${row.body}`;
    };
    await writer.query("SELECT pg_notify('spool_cluster', $1)", [inline(50_000, { t: "kick", to: 102, run: 77 })]);
    await writer.query("SELECT pg_notify('spool_cluster', $1)", [inline(50_001, { t: "notify", project: 1, method: "run/resolved", params: { run: "r" } })]);
    one.publish({ t: "kick", to: 102, run: 6 });
    await taken(start + 1);
    expect(received.slice(start).map((r) => r.message)).toEqual([{ t: "kick", to: 102, run: 6 }]);
    expect(two.dropped).toBe(droppedBefore + 2);
  });

  it("a server that starts later takes none of the rows stored before it listened, even notified to it", async () => {
    const lateLog: string[] = [];
    const late = await bus(103, logger(lateLog));
    try {
      // 101's kick for server 103 was stored before 103 started.
      const before = (await rowsOf(101)).find((r) => r.body.includes('"to":103'))!;
      await forge(before, 101, 103);
      await new Promise<void>((resolve) => {
        const look = () => (late.dropped >= 1 ? resolve() : setTimeout(look, 20));
        look();
      });
      expect(lateLog.find((m) => m.includes("cluster_events"))).toContain("was taken already (a replay)");
    } finally {
      await late.close();
    }
  });
});
