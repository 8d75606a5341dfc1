/**
 * What grew between two heap snapshots of one process (V8's .heapsnapshot files, e.g. from agent-turns.ts's
 * SPOOL_BENCH_HEAP_AT): each heap's total, then per constructor (or node type for strings, code, arrays …) the
 * count and self size in each and the difference, largest growth first; and the objects new in B (ids not in A)
 * by constructor, the ones still alive that were made between the two.
 *
 *   npx tsx bench/heap-diff.ts A.heapsnapshot B.heapsnapshot [rows]
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

interface Group {
  count: number;
  size: number;
}

/** Per class (`type:name` for objects, the node type otherwise): count and self size; and every node's id with its class. */
function read(file: string): { groups: Map<string, Group>; ids: Map<number, string>; sizes: Map<number, number>; total: number } {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [T, N, I, S] = ["type", "name", "id", "self_size"].map((f) => fields.indexOf(f)) as [number, number, number, number];
  const groups = new Map<string, Group>();
  const ids = new Map<number, string>();
  const sizes = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + T]!]!;
    const name = snap.strings[snap.nodes[i + N]!]!;
    const key = type === "object" || type === "closure" ? `${type}:${name.slice(0, 60)}` : type === "native" ? `native:${name.slice(0, 40)}` : type;
    const size = snap.nodes[i + S]!;
    const group = groups.get(key) ?? { count: 0, size: 0 };
    group.count++;
    group.size += size;
    groups.set(key, group);
    ids.set(snap.nodes[i + I]!, key);
    sizes.set(snap.nodes[i + I]!, size);
    total += size;
  }
  return { groups, ids, sizes, total };
}

const [fileA, fileB, rowsArg] = process.argv.slice(2);
if (!fileA || !fileB) {
  console.error("usage: npx tsx bench/heap-diff.ts A.heapsnapshot B.heapsnapshot [rows]");
  process.exit(2);
}
const rows = Number(rowsArg ?? 25);
const a = read(fileA);
const b = read(fileB);
const mb = (n: number) => (n / 2 ** 20).toFixed(2);
console.log(`heap: A ${mb(a.total)} MB, B ${mb(b.total)} MB, growth ${mb(b.total - a.total)} MB`);

console.log(`\nby class, largest growth first (count A → B, self size MB A → B):`);
const keys = new Set([...a.groups.keys(), ...b.groups.keys()]);
const growth = [...keys]
  .map((k) => ({ k, a: a.groups.get(k) ?? { count: 0, size: 0 }, b: b.groups.get(k) ?? { count: 0, size: 0 } }))
  .sort((x, y) => y.b.size - y.a.size - (x.b.size - x.a.size));
for (const g of growth.slice(0, rows)) {
  console.log(`${g.k.padEnd(70)} ${String(g.a.count).padStart(8)} → ${String(g.b.count).padEnd(8)} ${mb(g.a.size).padStart(8)} → ${mb(g.b.size)}`);
}

console.log(`\nalive in B, made after A (by class: count, self size MB):`);
const fresh = new Map<string, Group>();
for (const [id, key] of b.ids) {
  if (a.ids.has(id)) continue;
  const group = fresh.get(key) ?? { count: 0, size: 0 };
  group.count++;
  group.size += b.sizes.get(id)!;
  fresh.set(key, group);
}
for (const [k, g] of [...fresh].sort((x, y) => y[1].size - x[1].size).slice(0, rows)) {
  console.log(`${k.padEnd(70)} ${String(g.count).padStart(8)} ${mb(g.size).padStart(8)}`);
}
