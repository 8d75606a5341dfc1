import pg from "pg";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { ENTRY } from "../../src/protocol/status.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/postgres.js";
import type { AppendOutcome } from "../../src/store/store.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { eventually } from "../helpers/server.js";

// Grouped appends on PostgreSQL, at the store: many channels at once, retries, mismatches, gaps, closed channels,
// and a second server (another store on the same database) writing to a channel this one wrote last.

describeWithInfra("postgres", "PostgreSQL appends", () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let store: PostgresStore;
  const opened: PostgresStore[] = [];
  let run = 0;

  beforeAll(async () => {
    database = await freshDatabase();
    store = await openPostgresStore(database.url);
    await migrateToLatest(store, MIGRATIONS_DIR);
    const now = Date.now();
    await store.pool.query("INSERT INTO projects (name, root, created_at) VALUES ('p', '/', $1)", [now]);
    run = (await store.pool.query("INSERT INTO runs (project_id, alias, status, created_at, updated_at) VALUES (1, 'r', 102, $1, $1) RETURNING id", [now]))
      .rows[0].id;
  });
  afterEach(async () => {
    for (const other of opened.splice(0)) await other.close();
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  let paths = 0;
  async function channel(): Promise<number> {
    const now = Date.now();
    const { rows } = await store.pool.query(
      "INSERT INTO entries (run_id, path, scheme, turn, status, streamed, created_at, updated_at) VALUES ($1, $2, 'sh', 1, $3, 1, $4, $4) RETURNING id",
      [run, `sh://c${++paths}`, ENTRY.streaming, now],
    );
    return rows[0].id;
  }

  async function stored(entryId: number) {
    const chunks = await store.pool.query<{ seq: number; byte_offset: number; line_offset: number; newlines: number; data: Buffer }>(
      "SELECT seq, byte_offset, line_offset, newlines, data FROM chunks WHERE entry_id = $1 ORDER BY seq",
      [entryId],
    );
    const entry = await store.pool.query<{ bytes: number; newlines: number; last_seq: number; ends_with_newline: number }>(
      "SELECT bytes, newlines, last_seq, ends_with_newline FROM entries WHERE id = $1",
      [entryId],
    );
    return { chunks: chunks.rows, entry: entry.rows[0]! };
  }

  /** The chunks and counters say the same as `expected`, chunk by chunk. */
  async function expectStored(entryId: number, expected: string[]): Promise<void> {
    const { chunks, entry } = await stored(entryId);
    expect(chunks.map((c) => c.data.toString())).toEqual(expected);
    let bytes = 0;
    let lines = 0;
    for (const [i, chunk] of chunks.entries()) {
      expect(chunk).toMatchObject({ seq: i + 1, byte_offset: bytes, line_offset: lines });
      const newlines = expected[i]!.split("\n").length - 1;
      expect(chunk.newlines).toBe(newlines);
      bytes += Buffer.byteLength(expected[i]!);
      lines += newlines;
    }
    expect(entry).toMatchObject({ bytes, newlines: lines, last_seq: expected.length });
  }

  const append = (s: PostgresStore, entryId: number, text: string, seq?: number): Promise<AppendOutcome> =>
    s.appendChunk(entryId, Buffer.from(text), seq, ENTRY.streaming);

  it("many channels appending at once: every chunk stored once, in order per channel, with its offsets", async () => {
    const ids = await Promise.all(Array.from({ length: 24 }, () => channel()));
    const expected = new Map(ids.map((id, c) => [id, Array.from({ length: 40 }, (_, i) => `${c}:${i}\n`.repeat((i % 5) + 1) + (i % 3 ? "" : "partial"))]));
    // Every append issued before any is answered, interleaved across channels: they share batches.
    const calls: { id: number; i: number; outcome: Promise<AppendOutcome> }[] = [];
    for (let i = 0; i < 40; i++) for (const id of ids) calls.push({ id, i, outcome: append(store, id, expected.get(id)![i]!, i % 2 ? i + 1 : undefined) });
    for (const call of calls) expect(await call.outcome).toMatchObject({ kind: "appended", seq: call.i + 1 });
    for (const id of ids) await expectStored(id, expected.get(id)!);
  });

  it("a batch may hold an empty chunk and chunks of every size; each keeps its own bytes", async () => {
    const id = await channel();
    const texts = ["", "a", "b\n".repeat(40_000), "", "tail"];
    const outcomes = await Promise.all(texts.map((t, i) => append(store, id, t, i + 1)));
    expect(outcomes.map((o) => o.kind)).toEqual(["appended", "appended", "appended", "appended", "appended"]);
    await expectStored(id, texts);
    expect((await stored(id)).entry.ends_with_newline).toBe(0);
  });

  it("a retry of a stored seq is acknowledged when its bytes match and refused when they differ; a gap is refused; nothing is written twice", async () => {
    const id = await channel();
    expect(await append(store, id, "one\n", 1)).toMatchObject({ kind: "appended", seq: 1 });
    // In the same batch as new chunks: the retry of 1, then 2, a retry of 2 with the same bytes and with others, a gap.
    const outcomes = await Promise.all([
      append(store, id, "one\n", 1),
      append(store, id, "two\n", 2),
      append(store, id, "two\n", 2),
      append(store, id, "TWO\n", 2),
      append(store, id, "four\n", 4),
      append(store, id, "three\n", 3),
    ]);
    expect(outcomes).toMatchObject([
      { kind: "duplicate", seq: 1, bytes: 4 },
      { kind: "appended", seq: 2, bytes: 8 },
      { kind: "duplicate", seq: 2 },
      { kind: "mismatch", seq: 2 },
      { kind: "gap", expected: 3 },
      { kind: "appended", seq: 3, bytes: 14 },
    ]);
    // Later batches: the channel continues where it is.
    expect(await append(store, id, "four\n", 4)).toMatchObject({ kind: "appended", seq: 4 });
    expect(await append(store, id, "three\n", 3)).toMatchObject({ kind: "duplicate", seq: 3 });
    expect(await append(store, id, "six\n", 6)).toEqual({ kind: "gap", expected: 5 });
    expect(await append(store, id, "3\n", 3)).toEqual({ kind: "mismatch", seq: 3 });
    expect(await append(store, id, "five\n")).toMatchObject({ kind: "appended", seq: 5 });
    await expectStored(id, ["one\n", "two\n", "three\n", "four\n", "five\n"]);
  });

  it("a channel closed by another connection takes no more appends, even one this server wrote to last", async () => {
    const id = await channel();
    expect(await append(store, id, "a\n", 1)).toMatchObject({ kind: "appended" });
    expect(await append(store, id, "b\n", 2)).toMatchObject({ kind: "appended" });
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      await other.query("UPDATE entries SET status = $1 WHERE id = $2", [ENTRY.done, id]);
    } finally {
      await other.end();
    }
    const outcomes = await Promise.all([append(store, id, "c\n", 3), append(store, id, "d\n")]);
    expect(outcomes).toEqual([
      { kind: "closed", status: ENTRY.done },
      { kind: "closed", status: ENTRY.done },
    ]);
    // A retry of a stored seq is still acknowledged: the producer may not have heard the first answer.
    expect(await append(store, id, "b\n", 2)).toMatchObject({ kind: "duplicate", seq: 2 });
    await expectStored(id, ["a\n", "b\n"]);
  });

  it("a second server appending to the channel in between: each continues from what is stored, never over it", async () => {
    const id = await channel();
    const second = await openPostgresStore(database.url);
    opened.push(second);
    expect(await append(store, id, "1\n", 1)).toMatchObject({ kind: "appended", seq: 1 });
    expect(await append(store, id, "2\n", 2)).toMatchObject({ kind: "appended", seq: 2 });
    // The producer moved to the second server, which stores 3 and 4.
    expect(await append(second, id, "3\n", 3)).toMatchObject({ kind: "appended", seq: 3, bytes: 6 });
    expect(await append(second, id, "4\n")).toMatchObject({ kind: "appended", seq: 4, bytes: 8 });
    // And back: the first server's own idea of the channel is out of date.
    const outcomes = await Promise.all([append(store, id, "3\n", 3), append(store, id, "x\n", 4), append(store, id, "5\n", 5), append(store, id, "6\n")]);
    expect(outcomes).toMatchObject([
      { kind: "duplicate", seq: 3 },
      { kind: "mismatch", seq: 4 },
      { kind: "appended", seq: 5, bytes: 10 },
      { kind: "appended", seq: 6, bytes: 12 },
    ]);
    expect(await append(second, id, "7\n", 7)).toMatchObject({ kind: "appended", seq: 7, bytes: 14 });
    expect(await append(store, id, "8\n")).toMatchObject({ kind: "appended", seq: 8, bytes: 16 });
    await expectStored(id, ["1\n", "2\n", "3\n", "4\n", "5\n", "6\n", "7\n", "8\n"]);
  });

  it("two servers appending to one channel at the same time without seqs: every chunk stored exactly once, offsets contiguous", async () => {
    const id = await channel();
    const second = await openPostgresStore(database.url);
    opened.push(second);
    const texts = Array.from({ length: 60 }, (_, i) => `${i % 2 ? "B" : "A"}${i}\n`);
    const outcomes = await Promise.all(texts.map((t, i) => append(i % 2 ? second : store, id, t)));
    expect(outcomes.every((o) => o.kind === "appended")).toBe(true);
    expect(new Set(outcomes.map((o) => (o.kind === "appended" ? o.seq : 0))).size).toBe(60);
    const { chunks } = await stored(id);
    expect(chunks.map((c) => c.data.toString()).sort()).toEqual([...texts].sort());
    // Each server's chunks keep the order it was given them in.
    for (const side of ["A", "B"]) {
      const order = chunks.map((c) => c.data.toString()).filter((t) => t.startsWith(side));
      expect(order).toEqual(texts.filter((t) => t.startsWith(side)));
    }
    await expectStored(
      id,
      chunks.map((c) => c.data.toString()),
    );
  });

  it("a channel's steady appends take one statement per batch, with no transaction around it", async () => {
    const id = await channel();
    expect(await append(store, id, "first\n", 1)).toMatchObject({ kind: "appended" });
    const statements: string[] = [];
    const query = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const config = args[0] as string | { text: string };
      statements.push(typeof config === "string" ? config : config.text);
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      for (let i = 2; i <= 5; i++) expect(await append(store, id, `line ${i}\n`, i)).toMatchObject({ kind: "appended", seq: i });
      // A batch of three.
      expect((await Promise.all([6, 7, 8].map((i) => append(store, id, `line ${i}\n`, i)))).map((o) => o.kind)).toEqual(["appended", "appended", "appended"]);
    } finally {
      pg.Client.prototype.query = query;
    }
    // (A connection the pool opens meanwhile first sets its compression: not an append's statement.)
    expect(statements.filter((s) => !s.startsWith("DO ")).length).toBe(5);
    expect(statements.some((s) => /^\s*(BEGIN|COMMIT)/i.test(s))).toBe(false);
    await expectStored(id, ["first\n", ...[2, 3, 4, 5, 6, 7, 8].map((i) => `line ${i}\n`)]);
  });

  it("a batch on its way does not hold up appends to other channels; the held channel's later appends follow in order", async () => {
    const held = await channel();
    const free = await channel();
    expect(await append(store, held, "h1\n", 1)).toMatchObject({ kind: "appended" });
    expect(await append(store, free, "f1\n", 1)).toMatchObject({ kind: "appended" });
    // Another connection holds the row of one channel: the batch writing to it waits for that lock.
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      await other.query("BEGIN");
      await other.query("SELECT * FROM entries WHERE id = $1 FOR UPDATE", [held]);
      const settled: string[] = [];
      const track = (name: string, outcome: Promise<AppendOutcome>) =>
        outcome.then((o) => {
          settled.push(name);
          return o;
        });
      const first = track("h2", append(store, held, "h2\n", 2));
      // Once that batch is on its way (the server shows its statement waiting for the lock), more appends come.
      await eventually(async () => {
        const { rows } = await store.pool.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        return rows[0].n > 0;
      });
      const later = track("h3", append(store, held, "h3\n", 3));
      // The other channel's appends are written meanwhile, while the held one's wait.
      expect(await append(store, free, "f2\n", 2)).toMatchObject({ kind: "appended", seq: 2 });
      expect(await append(store, free, "f3\n")).toMatchObject({ kind: "appended", seq: 3 });
      expect(settled).toEqual([]);
      await other.query("COMMIT");
      expect(await first).toMatchObject({ kind: "appended", seq: 2 });
      expect(await later).toMatchObject({ kind: "appended", seq: 3 });
      expect(settled).toEqual(["h2", "h3"]);
    } finally {
      await other.end();
    }
    await expectStored(held, ["h1\n", "h2\n", "h3\n"]);
    await expectStored(free, ["f1\n", "f2\n", "f3\n"]);
  });

  it("chunks are compressed with lz4 where the server has it", async () => {
    const id = await channel();
    expect(await append(store, id, "the same line of output\n".repeat(4000), 1)).toMatchObject({ kind: "appended" });
    const { rows } = await store.pool.query<{ lz4: boolean; method: string }>(
      `SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) AS lz4,
              (SELECT pg_column_compression(data) FROM chunks WHERE entry_id = $1) AS method`,
      [id],
    );
    expect(rows[0]!.method).toBe(rows[0]!.lz4 ? "lz4" : "pglz");
  });
});
