import { join } from "node:path";
import { sql, type Transaction } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY } from "../../src/core/status.js";
import { RUN } from "../../src/protocol/status.js";
import { chunkReadStats, cutLines, type LineRead, readLines } from "../../src/store/chunk-reads.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { openPostgresStore } from "../../src/store/postgres/postgres.js";
import { createRepositories, type Repositories } from "../../src/store/repositories.js";
import type { Database } from "../../src/store/schema.js";
import { openStore, type SqliteStore, type Store } from "../../src/store/sqlite/database.js";
import { preparedStats } from "../../src/store/sqlite/sync-reads.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { tempDir } from "../helpers/server.js";

/** What a read of `count` lines from 0-based `line` holds, from the channel's bytes alone: its lines, cut at maxBytes. */
function expected(all: Buffer, line: number, count: number, maxBytes: number): LineRead {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = all.indexOf(10); i !== -1; i = all.indexOf(10, i + 1)) {
    lines.push(all.subarray(start, i + 1));
    start = i + 1;
  }
  if (start < all.length) lines.push(all.subarray(start));
  const whole = Buffer.concat(lines.slice(line, line + count));
  const truncated = whole.length > maxBytes;
  const data = truncated ? whole.subarray(0, maxBytes) : whole;
  let newlines = 0;
  for (const byte of data) if (byte === 10) newlines++;
  return { data, lines: newlines + (data.length > 0 && data[data.length - 1] !== 10 ? 1 : 0), truncated };
}

/**
 * A read with its bytes as a latin1 string (one character a byte): toEqual compares a string at once, where it walks a
 * Buffer's bytes one by one (3.7 s of the suite's CPU for this file's ~1,200 comparisons).
 */
const bytesAsText = (read: LineRead) => ({ ...read, data: read.data.toString("latin1") });

/** Chunks with lines spanning them, one without any newline, empty ones, runs of bare newlines, a line longer than several chunks, a partial last line. */
function awkwardChunks(): Buffer[] {
  const chunks = [
    "alpha\nbe",
    "ta\ngam",
    "",
    "ma-without-a-newline-in-this-chunk",
    "\n",
    "\n\n",
    "delta\nepsilon\n",
    "x".repeat(300),
    "y".repeat(300),
    "z\nshort\n",
    "",
  ];
  // Deterministic pseudo-random chunks: lengths 1-200, newline densities from none to most bytes.
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let c = 0; c < 16; c++) {
    const density = c % 5 === 0 ? 0 : next() * 0.4;
    const length = 1 + Math.floor(next() * 200);
    chunks.push(Array.from({ length }, (_, i) => (next() < density ? "\n" : String.fromCharCode(97 + (i % 26)))).join(""));
  }
  chunks.push("the last line has no newline");
  return chunks.map((c) => Buffer.from(c));
}

/** `n` chunks of 40 lines of 47 bytes each. */
function evenChunks(n: number): Buffer[] {
  return Array.from({ length: n }, (_, c) =>
    Buffer.from(Array.from({ length: 40 }, (_, l) => `chunk ${String(c).padStart(5, "0")} line ${String(l).padStart(2, "0")} ${"-".repeat(26)}\n`).join("")),
  );
}

function readSuite(open: () => Promise<{ store: Store; close(): Promise<void> }>) {
  let store: Store;
  let close: () => Promise<void>;
  let repos: Repositories;
  let runId: number;

  beforeAll(async () => {
    ({ store, close } = await open());
    await migrateToLatest(store, MIGRATIONS_DIR);
    repos = createRepositories(store);
    const project = await repos.projects.createProject("reads", "/tmp");
    const now = Date.now();
    runId = (await repos.runs.insertRun({ project_id: project.id, alias: "r", model: null, mode: "act", status: RUN.done, created_at: now, updated_at: now }))
      .id;
  });
  afterAll(() => close());

  async function channel(name: string, chunks: Buffer[]): Promise<{ id: number; all: Buffer; lines: number }> {
    const now = Date.now();
    const entry = await repos.entries.insertEntry({
      run_id: runId,
      path: `sh://turn_1/${name}`,
      scheme: "sh",
      turn: 1,
      status: ENTRY.streaming,
      streamed: 1,
      created_at: now,
      updated_at: now,
    });
    // Appended 100 at a time (group commits), in order.
    for (let i = 0; i < chunks.length; i += 100) {
      await Promise.all(chunks.slice(i, i + 100).map((data, j) => repos.chunks.append(entry.id, data, i + j + 1, ENTRY.streaming)));
    }
    const row = (await repos.entries.findEntryById(entry.id))!;
    expect(row.last_seq).toBe(chunks.length);
    return { id: entry.id, all: Buffer.concat(chunks), lines: row.newlines + (row.ends_with_newline ? 0 : 1) };
  }

  it("every slice, tail and maxBytes cut of a channel with awkward chunk boundaries holds exactly its lines", async () => {
    const { id, all, lines } = await channel("awkward_1", awkwardChunks());
    let checked = 0;
    for (let line = 0; line <= lines + 1; line++) {
      for (const count of [1, 3, 20, Number.MAX_SAFE_INTEGER]) {
        for (const maxBytes of [0, 7, 10_000]) {
          const want = bytesAsText(expected(all, line, count, maxBytes));
          // The store's read (synchronous on SQLite) and Kysely's, which PostgreSQL and a SQLite transaction use.
          expect(bytesAsText(await repos.chunks.readLines(id, line, count, maxBytes)), `line ${line} count ${count} maxBytes ${maxBytes}`).toEqual(want);
          expect(bytesAsText(await readLines(store.db, id, line, count, maxBytes)), `kysely: line ${line} count ${count} maxBytes ${maxBytes}`).toEqual(want);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
    // The tail as entry/get asks for it: from the entry's line count.
    expect((await repos.chunks.readLines(id, lines - 2, 2, 10_000)).data.toString()).toBe(`${all.toString().split("\n").slice(-2).join("\n")}`);
    expect(await repos.chunks.readLines(id, 0, 0, 10_000)).toEqual({ data: Buffer.alloc(0), lines: 0, truncated: false });
    // ~7,000 reads, ~10 s of CPU on a quiet machine; a CI run beside two others (Node 24) took past the 60 s default,
    // and the loop, still running after its timeout, counted its reads into the next test's chunkReadStats.
  }, 300_000);

  it("a read of 20 lines fetches at most the two chunks holding them, however many the channel has", async () => {
    for (const n of [50, 800]) {
      const { id, all, lines } = await channel(`even_${n}`, evenChunks(n));
      expect(lines).toBe(40 * n);
      const reads = [lines - 20, 0, 1, 39, 40, 41, 30, Math.floor(lines / 2) + 25, lines - 21, lines - 1, lines];
      for (const line of reads) {
        for (const read of [repos.chunks.readLines, (...a: [number, number, number, number]) => readLines(store.db, ...a)]) {
          const before = { ...chunkReadStats };
          const got = await read(id, line, 20, 1 << 20);
          expect(bytesAsText(got)).toEqual(bytesAsText(expected(all, line, 20, 1 << 20)));
          // The chunks holding the 20 lines (or what is left of them), from the one the index lookup finds: the last
          // with fewer newlines before it than `line`, so a line starting a chunk is looked for in the chunk before.
          const found = line === 0 ? 0 : Math.floor((line - 1) / 40);
          const rows = line >= lines ? 1 : Math.floor((Math.min(line + 20, lines) - 1) / 40) - found + 1;
          expect(rows).toBeLessThanOrEqual(2);
          expect(chunkReadStats.rows - before.rows, `n ${n} line ${line}`).toBe(rows);
          expect(chunkReadStats.bytes - before.bytes).toBe((rows * all.length) / n);
        }
      }
    }
  });

  it("through Kysely, the chunks after the first come in one page, and none past the lines asked for and maxBytes but one", async () => {
    // 300 chunks of one 10-byte line each: a tail of 20 lines is 20 chunks.
    const { id, all, lines } = await channel(
      "one_line_1",
      Array.from({ length: 300 }, (_, i) => Buffer.from(`line ${String(i).padStart(4, "0")}\n`)),
    );
    for (const [line, count, maxBytes] of [
      [lines - 20, 20, 1 << 20],
      [0, 20, 1 << 20],
      [150, 20, 1 << 20],
      [150, 20, 35],
      [150, 20, 40],
      [150, 60, 1 << 20],
      [290, 20, 1 << 20],
      // To the end (entry/get's tail): bounded by maxBytes alone.
      [lines - 20, Number.MAX_SAFE_INTEGER, 1 << 20],
      [150, Number.MAX_SAFE_INTEGER, 35],
    ] as const) {
      const before = { ...chunkReadStats };
      expect(await readLines(store.db, id, line, count, maxBytes), `line ${line} count ${count} maxBytes ${maxBytes}`).toEqual(
        expected(all, line, count, maxBytes),
      );
      const taken = chunkReadStats.rows - before.rows;
      expect(chunkReadStats.pages - before.pages, `line ${line} count ${count} maxBytes ${maxBytes}`).toBeLessThanOrEqual(1);
      // Taken: the first chunk, then those fetched after it (all of them, or all but one).
      expect(chunkReadStats.fetched - before.fetched).toBeGreaterThanOrEqual(taken - 1);
      expect(chunkReadStats.fetched - before.fetched).toBeLessThanOrEqual(taken);
    }
  });
}

describe("line reads on SQLite", () => {
  readSuite(async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    return { store, close: () => store.close() };
  });
});

describeWithInfra("postgres", "line reads on PostgreSQL", () => {
  readSuite(async () => {
    const db = await freshDatabase();
    const store = await openPostgresStore(db.url);
    return {
      store,
      close: async () => {
        await store.close();
        await db.drop();
      },
    };
  });
});

describe("SQLite's synchronous reads and a transaction of the Kysely side", () => {
  let store: SqliteStore;
  let repos: Repositories;
  let entryId: number;
  let runId: number;
  let projectId: number;

  beforeAll(async () => {
    store = openStore(join(tempDir(), "spool.db"));
    await migrateToLatest(store, MIGRATIONS_DIR);
    repos = createRepositories(store);
    const project = await repos.projects.createProject("trx", "/tmp");
    projectId = project.id;
    const now = Date.now();
    runId = (await repos.runs.insertRun({ project_id: project.id, alias: "r", model: null, mode: "act", status: RUN.done, created_at: now, updated_at: now }))
      .id;
    const entry = await repos.entries.insertEntry({
      run_id: runId,
      path: "sh://turn_1/x_1",
      scheme: "sh",
      turn: 1,
      status: ENTRY.streaming,
      streamed: 1,
      created_at: now,
      updated_at: now,
    });
    entryId = entry.id;
    await repos.chunks.append(entryId, Buffer.from("one\ntwo\n"), 1, ENTRY.streaming);
  });
  afterAll(() => store.close());

  /** Runs `during` while a Kysely transaction that wrote `write` is open, then rolls it back; returns what `during` started. */
  async function whileRolledBack<T>(write: (trx: Transaction<Database>) => Promise<unknown>, during: () => Promise<T>) {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const transaction = store.db
      .transaction()
      .execute(async (trx) => {
        await write(trx);
        entered();
        await gate;
        throw new Error("rolled back");
      })
      .catch((error: Error) => error.message);
    await inside;
    expect(store.sqlite.inTransaction).toBe(true);
    const started = during();
    release();
    expect(await transaction).toBe("rolled back");
    return started;
  }

  it("a line read made while the transaction is open does not see its uncommitted chunk", async () => {
    const read = await whileRolledBack(
      (trx) =>
        sql`INSERT INTO chunks (entry_id, seq, byte_offset, line_offset, newlines, data) VALUES (${entryId}, 2, 8, 2, 1, ${Buffer.from("phantom\n")})`.execute(
          trx,
        ),
      () => Promise.all([repos.chunks.readLines(entryId, 0, 10, 1000), repos.chunks.readChunksAfter(entryId, 0, 10)]),
    );
    expect(read[0].data.toString()).toBe("one\ntwo\n");
    expect(read[1].map((c) => c.seq)).toEqual([1]);
  });

  it("an entry or a run looked up while the transaction is open is the committed one", async () => {
    const found = await whileRolledBack(
      async (trx) => {
        await trx.updateTable("entries").set({ bytes: 999 }).where("id", "=", entryId).execute();
        await trx.updateTable("runs").set({ status: RUN.failed }).where("id", "=", runId).execute();
      },
      () => Promise.all([repos.entries.findEntry(runId, "sh://turn_1/x_1"), repos.entries.findEntryById(entryId), repos.runs.findRun(projectId, "r")]),
    );
    expect([found[0]?.bytes, found[1]?.bytes, found[2]?.status]).toEqual([8, 8, RUN.done]);
  });
});

describe("the read statements on SQLite", () => {
  it("are prepared when the repositories are made, so no read prepares a statement; a store not yet migrated prepares them on first use", async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    try {
      // Not migrated: no table to prepare against; making the repositories does not fail.
      const early = createRepositories(store);
      await migrateToLatest(store, MIGRATIONS_DIR);
      const project = await early.projects.createProject("prep", "/tmp");
      const now = Date.now();
      const run = await early.runs.insertRun({
        project_id: project.id,
        alias: "r",
        model: null,
        mode: "act",
        status: RUN.done,
        created_at: now,
        updated_at: now,
      });
      // Prepared on first use on the store made before the migrations: the same rows as the Kysely side.
      expect((await early.runs.findRun(project.id, "r"))?.id).toBe(run.id);

      const other = openStore(store.file);
      try {
        const before = preparedStats.sets;
        const repos = createRepositories(other);
        // The run lookup, the entry lookups, the chunk reads and the audit and outbox writes: four sets, prepared now.
        expect(preparedStats.sets - before).toBe(4);
        const entry = await repos.entries.insertEntry({
          run_id: run.id,
          path: "sh://turn_1/prep_1",
          scheme: "sh",
          turn: 1,
          status: ENTRY.streaming,
          streamed: 1,
          created_at: now,
          updated_at: now,
        });
        await repos.chunks.append(entry.id, Buffer.from("one\ntwo\nthree\n"), 1, ENTRY.streaming);
        const made = preparedStats.sets;
        expect((await repos.runs.findRun(project.id, "r"))?.id).toBe(run.id);
        expect((await repos.entries.findEntry(run.id, "sh://turn_1/prep_1"))?.id).toBe(entry.id);
        expect((await repos.entries.findEntryById(entry.id))?.path).toBe("sh://turn_1/prep_1");
        expect((await repos.chunks.readLines(entry.id, 1, 20, 1024)).data.toString()).toBe("two\nthree\n");
        expect((await repos.chunks.readLines(entry.id, 0, 1, 1024)).data.toString()).toBe("one\n");
        expect(await repos.chunks.readChunksAfter(entry.id, 0, 10)).toHaveLength(1);
        expect(preparedStats.sets).toBe(made);
      } finally {
        await other.close();
      }
    } finally {
      await store.close();
    }
  });
});

describe("cutLines (the cutter the server warms at start)", () => {
  it("cuts from chunks in memory exactly what a read of the store returns", () => {
    const chunks = awkwardChunks().map((data) => ({ data, newlines: data.filter((b) => b === 10).length }));
    const all = Buffer.concat(chunks.map((c) => c.data));
    for (let line = 0; line < 40; line++) {
      for (const [count, maxBytes] of [
        [1, 10_000],
        [20, 10_000],
        [20, 7],
      ] as const) {
        expect(bytesAsText(cutLines(chunks, line, count, maxBytes)), `line ${line} count ${count} maxBytes ${maxBytes}`).toEqual(
          bytesAsText(expected(all, line, count, maxBytes)),
        );
      }
    }
  });
});
