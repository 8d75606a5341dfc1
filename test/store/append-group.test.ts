import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ENTRY } from "../../src/protocol/status.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { openStore, type SqliteStore } from "../../src/store/sqlite/database.js";
import { countNewlines } from "../../src/store/store.js";
import { tempDir } from "../helpers/server.js";

/**
 * The group commit of src/store/sqlite/chunks.ts, on a real SQLite file: appends queued in one turn of the event loop
 * share one transaction, which reads each channel's row once and writes it back once. What each append gets
 * back and what is stored must be what one transaction per chunk gave.
 */

// The append path is SQLite's own; PostgreSQL has its own (postgres.ts).
const open: SqliteStore[] = [];
afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});

async function storeWithChannels(count: number): Promise<SqliteStore> {
  const store = openStore(join(tempDir(), "spool.db"));
  open.push(store);
  await migrateToLatest(store, MIGRATIONS_DIR);
  store.sqlite.exec(
    "INSERT INTO projects (id, name, root, created_at) VALUES (1, 'p', '/', 0); INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'r', 102, 0, 0)",
  );
  const entry = store.sqlite.prepare(
    "INSERT INTO entries (id, run_id, path, scheme, turn, status, streamed, created_at, updated_at) VALUES (?, 1, ?, 'sh', 1, ?, 1, 0, 0)",
  );
  for (let id = 1; id <= count; id++) entry.run(id, `sh://turn_1/c_${id}`, ENTRY.streaming);
  return store;
}

const row = (store: SqliteStore, id: number) =>
  store.sqlite.prepare("SELECT bytes, newlines, ends_with_newline, last_seq, status FROM entries WHERE id = ?").get(id) as {
    bytes: number;
    newlines: number;
    ends_with_newline: number;
    last_seq: number;
    status: number;
  };

const chunks = (store: SqliteStore, id: number) =>
  store.sqlite.prepare("SELECT seq, byte_offset, line_offset, newlines, data FROM chunks WHERE entry_id = ? ORDER BY seq").all(id) as {
    seq: number;
    byte_offset: number;
    line_offset: number;
    newlines: number;
    data: Buffer;
  }[];

/** What a channel's row holds after `parts` were appended one transaction each. */
function expectedCounters(parts: Buffer[]) {
  const all = Buffer.concat(parts);
  return { bytes: all.length, newlines: countNewlines(all), ends_with_newline: Number(all.length > 0 && all[all.length - 1] === 10), last_seq: parts.length };
}

const totalChanges = (store: SqliteStore) => (store.sqlite.prepare("SELECT total_changes() AS n").get() as { n: number }).n;

describe("appends of one group commit", () => {
  it("several channels, retries and refusals in one group: each append gets what it got alone, each chunk is stored once and in order, the counters are the sums", async () => {
    const store = await storeWithChannels(3);
    const a = [Buffer.from("a1\na1\n"), Buffer.from("a2 no newline"), Buffer.from(" a3 ends\n")];
    const b = [Buffer.from("b1\n"), Buffer.from("b2\nb2")];
    // Channel 3 has a chunk from an earlier group: a retry of it in this group is acknowledged, not stored again.
    const c1 = Buffer.from("c1\n");
    await expect(store.appendChunk(3, c1, 1, ENTRY.streaming)).resolves.toMatchObject({ kind: "appended", seq: 1 });

    // One turn: everything below joins one group, interleaved across the channels.
    const outcomes = await Promise.all([
      store.appendChunk(1, a[0]!, 1, ENTRY.streaming),
      store.appendChunk(2, b[0]!, 1, ENTRY.streaming),
      store.appendChunk(3, c1, 1, ENTRY.streaming), // retry of a seq stored by an earlier group
      store.appendChunk(1, a[1]!, 2, ENTRY.streaming),
      store.appendChunk(1, a[0]!, 1, ENTRY.streaming), // retry of a seq stored earlier in this same group
      store.appendChunk(1, Buffer.from("forged"), 2, ENTRY.streaming), // same seq, other bytes
      store.appendChunk(2, Buffer.from("b4\n"), 4, ENTRY.streaming), // skips seq 3
      store.appendChunk(2, b[1]!, 2, ENTRY.streaming),
      store.appendChunk(1, a[2]!, undefined, ENTRY.streaming), // no seq: the next one
      store.appendChunk(3, Buffer.from("c2\n"), 2, ENTRY.streaming),
    ]);
    expect(outcomes.map((o) => ({ kind: o.kind, ...("seq" in o ? { seq: o.seq } : {}), ...("expected" in o ? { expected: o.expected } : {}) }))).toEqual([
      { kind: "appended", seq: 1 },
      { kind: "appended", seq: 1 },
      { kind: "duplicate", seq: 1 },
      { kind: "appended", seq: 2 },
      { kind: "duplicate", seq: 1 },
      { kind: "mismatch", seq: 2 },
      { kind: "gap", expected: 2 },
      { kind: "appended", seq: 2 },
      { kind: "appended", seq: 3 },
      { kind: "appended", seq: 2 },
    ]);
    // Each appended outcome carries the counters as they stood after it, as an append alone reported them.
    expect(outcomes[0]).toMatchObject({ bytes: 6, lines: 2 });
    expect(outcomes[3]).toMatchObject({ bytes: 6 + 13, lines: 3 });
    expect(outcomes[4]).toMatchObject({ kind: "duplicate", bytes: 19 });
    expect(outcomes[8]).toMatchObject({ bytes: 6 + 13 + 9, lines: 3 });
    expect(outcomes[2]).toMatchObject({ kind: "duplicate", bytes: 3, lines: 1 });

    expect(row(store, 1)).toMatchObject(expectedCounters(a));
    expect(row(store, 2)).toMatchObject(expectedCounters(b));
    expect(row(store, 3)).toMatchObject(expectedCounters([c1, Buffer.from("c2\n")]));
    for (const [id, parts] of [
      [1, a],
      [2, b],
      [3, [c1, Buffer.from("c2\n")]],
    ] as const) {
      const stored = chunks(store, id);
      expect(stored.map((c) => c.seq)).toEqual(parts.map((_, i) => i + 1));
      expect(Buffer.concat(stored.map((c) => c.data)).equals(Buffer.concat(parts))).toBe(true);
      // Offsets are those of the chunks before: what a slice or a tail looks chunks up by.
      let bytes = 0;
      let lines = 0;
      for (const c of stored) {
        expect({ byte_offset: c.byte_offset, line_offset: c.line_offset, newlines: c.newlines }).toEqual({
          byte_offset: bytes,
          line_offset: lines,
          newlines: countNewlines(c.data),
        });
        bytes += c.data.length;
        lines += c.newlines;
      }
    }
  });

  it("a group writes each channel's row once, however many of its chunks the group holds", async () => {
    const store = await storeWithChannels(2);
    const before = totalChanges(store);
    const appends = [];
    for (let seq = 1; seq <= 8; seq++) {
      appends.push(store.appendChunk(1, Buffer.from(`one ${seq}\n`), seq, ENTRY.streaming));
      appends.push(store.appendChunk(2, Buffer.from(`two ${seq}\n`), seq, ENTRY.streaming));
    }
    const outcomes = await Promise.all(appends);
    expect(outcomes.every((o) => o.kind === "appended")).toBe(true);
    // 16 chunk rows and one UPDATE per channel (16 + 16 when every chunk updated its channel's row).
    expect(totalChanges(store) - before).toBe(16 + 2);
    expect(row(store, 1)).toMatchObject({ last_seq: 8, newlines: 8 });
    expect(row(store, 2)).toMatchObject({ last_seq: 8, newlines: 8 });
  });

  it("a channel closed between two chunks of one group takes neither; a later group is refused too, and what came before stays", async () => {
    const store = await storeWithChannels(1);
    await store.appendChunk(1, Buffer.from("before\n"), 1, ENTRY.streaming);
    const first = store.appendChunk(1, Buffer.from("after 1\n"), 2, ENTRY.streaming);
    // Another writer on the same connection closes the channel before the group commits (the producer ended).
    store.sqlite.prepare("UPDATE entries SET status = ? WHERE id = 1").run(ENTRY.done);
    const second = store.appendChunk(1, Buffer.from("after 2\n"), 3, ENTRY.streaming);
    expect(await Promise.all([first, second])).toEqual([
      { kind: "closed", status: ENTRY.done },
      { kind: "closed", status: ENTRY.done },
    ]);
    await expect(store.appendChunk(1, Buffer.from("later\n"), 2, ENTRY.streaming)).resolves.toEqual({ kind: "closed", status: ENTRY.done });
    expect(row(store, 1)).toMatchObject({ bytes: 7, last_seq: 1, status: ENTRY.done });
    expect(chunks(store, 1).map((c) => c.data.toString())).toEqual(["before\n"]);
  });

  it("a group that fails rolls back whole: no chunk and no counter of it is kept, every append in it is refused", async () => {
    const store = await storeWithChannels(2);
    await store.appendChunk(1, Buffer.from("kept\n"), 1, ENTRY.streaming);
    const outcomes = await Promise.allSettled([
      store.appendChunk(1, Buffer.from("lost 1\n"), 2, ENTRY.streaming),
      store.appendChunk(2, Buffer.from("lost 2\n"), 1, ENTRY.streaming),
      store.appendChunk(99, Buffer.from("no such channel\n"), 1, ENTRY.streaming),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(row(store, 1)).toMatchObject({ bytes: 5, last_seq: 1 });
    expect(row(store, 2)).toMatchObject({ bytes: 0, last_seq: 0 });
    expect(chunks(store, 2)).toEqual([]);
    // The next group starts from the stored row, not from what the failed group had counted.
    await expect(store.appendChunk(1, Buffer.from("next\n"), 2, ENTRY.streaming)).resolves.toMatchObject({ kind: "appended", seq: 2, bytes: 10 });
  });
});
