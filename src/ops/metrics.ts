import { sql } from "kysely";
import { collectDefaultMetrics, type Metric, Registry } from "prom-client";
import { ENTRY, RUN } from "../core/status.js";
import { BACKEND_NAMES } from "../protocol/backends.js";
import { jsonText } from "../store/dialect.js";
import type { Store } from "../store/store.js";
import type { Buckets, Meter } from "./meter.js";

/** What /metrics reads when it is scraped (nothing of it is kept up to date between scrapes). */
export interface MetricSources {
  meter: Meter;
  store: Store;
  /** The client names of the open connections (`initialize`'s clientInfo.name; null before it). */
  connections: () => Iterable<string | null>;
  /** The backends of the runners attached to this server. */
  runners: () => Iterable<string>;
  /** The names of the configured pools (each gets its series, at 0 when nothing waits or runs). */
  pools: () => Iterable<string>;
}

type Labels = Record<string, string | number>;
interface Value {
  value: number;
  labels: Labels;
  metricName?: string;
}

/** At most this many distinct client names are labelled; the rest count as "other" (labels keep few values). */
const MAX_CLIENT_LABELS = 20;

/**
 * The Prometheus registry of one server: prom-client's process metrics (CPU, RSS, heap, event-loop lag, GC) and
 * Spool's, each read at scrape time from the Meter's counters, the store (pending proposals, producers) and the
 * server's connections and runners. Names carry their unit; counters end in _total.
 */
export function createMetrics(sources: MetricSources): Registry {
  const registry = new Registry();
  const { meter } = sources;
  const add: AddMetric = (name, help, type, read) => {
    const metric = {
      name,
      help,
      type,
      aggregator: "sum",
      get: async () => ({ name, help, type, aggregator: "sum", values: await read() }),
    };
    registry.registerMetric(metric as unknown as Metric);
  };

  addStoreSeries(add, sources.store);
  addMeterSeries(add, meter);
  addServerSeries(add, sources);
  return Registry.merge([processMetrics(), registry]);
}

/** Registers a metric read at scrape time. */
type AddMetric = (name: string, help: string, type: "gauge" | "counter" | "histogram", read: () => Value[] | Promise<Value[]>) => void;

/** The series the store answers: pending proposals, model spend, paused runs and producers. */
function addStoreSeries(add: AddMetric, store: Store): void {
  add("spool_proposals_pending", "Proposals waiting for a decision, by project", "gauge", async () => {
    const projects = await sql<{ name: string }>`select name from projects`.execute(store.db);
    const pending = await sql<{ project: string; n: number | string }>`
      select p.name as project, count(*) as n from entries e join runs r on r.id = e.run_id join projects p on p.id = r.project_id
      where e.status in (${ENTRY.streaming}, ${ENTRY.proposed}) and e.status = ${ENTRY.proposed} and e.scheme = 'log' group by p.name`.execute(store.db);
    const counts = new Map(pending.rows.map((r) => [r.project, Number(r.n)]));
    return projects.rows.map((p) => ({ value: counts.get(p.name) ?? 0, labels: { project: p.name } }));
  });
  // Spend by project: a credential scoped to projects sees its projects' series only (scopedMetrics).
  const spend = async () =>
    (
      await sql<{ project: string; input: number | string; output: number | string; read: number | string; write: number | string; cost: number | string }>`
      select p.name as project, sum(u.prompt_tokens) as input, sum(u.completion_tokens) as output, sum(u.cache_read_tokens) as read,
        sum(u.cache_write_tokens) as write, sum(u.cost_micro_usd) as cost
      from model_usage u join runs r on r.id = u.run_id join projects p on p.id = r.project_id group by p.name`.execute(store.db)
    ).rows;
  add(
    "spool_model_tokens_total",
    "Tokens the agent's model calls used, by project and kind: input (cache reads and writes included), output, cache_read, cache_write",
    "counter",
    async () =>
      (await spend()).flatMap((r) => [
        { value: Number(r.input), labels: { project: r.project, kind: "input" } },
        { value: Number(r.output), labels: { project: r.project, kind: "output" } },
        { value: Number(r.read), labels: { project: r.project, kind: "cache_read" } },
        { value: Number(r.write), labels: { project: r.project, kind: "cache_write" } },
      ]),
  );
  add("spool_model_cost_usd_total", "What the agent's model calls cost, by project, in US dollars (the price table's)", "counter", async () =>
    (await spend()).map((r) => ({ value: Number(r.cost) / 1e6, labels: { project: r.project } })),
  );
  add("spool_runs_paused", "Runs paused at their budget, waiting for a person to raise it, by project", "gauge", async () => {
    const rows = await sql<{ project: string; n: number | string }>`
      select p.name as project, count(*) as n from runs r join projects p on p.id = r.project_id where r.status = ${RUN.paused} group by p.name`.execute(
      store.db,
    );
    return rows.rows.map((r) => ({ value: Number(r.n), labels: { project: r.project } }));
  });
  add(
    "spool_producers",
    "Producers (proposed commands) by state: proposed (waiting for a decision) or running (a channel still streaming)",
    "gauge",
    async () => {
      const [row] = (
        await sql<{ proposed: number | string; running: number | string }>`
        select count(distinct case when status = ${ENTRY.proposed} and scheme = 'log' then id end) as proposed,
               count(distinct case when status = ${ENTRY.streaming} and producer_id is not null then producer_id end) as running
        from entries where status in (${ENTRY.streaming}, ${ENTRY.proposed})`.execute(store.db)
      ).rows;
      return [
        { value: Number(row?.proposed ?? 0), labels: { state: "proposed" } },
        { value: Number(row?.running ?? 0), labels: { state: "running" } },
      ];
    },
  );
}

/** The series of the Meter's counters: decisions, proposal waits, stream bytes and chunks, append, watcher lag, checkpoint holds. */
function addMeterSeries(add: AddMetric, meter: Meter): void {
  add("spool_decisions_total", "Decisions on proposals, by outcome (accept, reject) and by whom (person, rule, abort, deadline, revoked)", "counter", () => {
    const values: Value[] = [];
    for (const outcome of ["accept", "reject"])
      for (const by of ["person", "rule", "abort", "deadline", "revoked"])
        values.push({ value: meter.decisions.get(`${outcome} ${by}`) ?? 0, labels: { outcome, by } });
    return values;
  });
  add("spool_proposal_wait_seconds", "Seconds from a proposal to its decision", "histogram", () =>
    histogram("spool_proposal_wait_seconds", meter.proposalWait),
  );
  add("spool_stream_bytes_total", "Bytes of output stored", "counter", () => [{ value: meter.streamBytes, labels: {} }]);
  add("spool_stream_chunks_total", "Chunks of output stored", "counter", () => [{ value: meter.streamChunks, labels: {} }]);
  add("spool_append_seconds", "Seconds from a chunk's arrival to its commit", "histogram", () => histogram("spool_append_seconds", meter.append));
  add("spool_watcher_lag_seconds", "Seconds from a chunk's arrival to its sending to the channel's live watchers", "histogram", () =>
    histogram("spool_watcher_lag_seconds", meter.watcherLag),
  );
  add("spool_checkpoint_hold_seconds", "Seconds the checkpoint worker held the appends while it started the WAL over", "histogram", () =>
    histogram("spool_checkpoint_hold_seconds", meter.checkpointHold),
  );
}

/** The series of this server's connections and runners, and of the pools' queues (the database's) and claims. */
function addServerSeries(add: AddMetric, sources: MetricSources): void {
  const { meter } = sources;
  add("spool_connections", "Open connections, by the client name they initialized with (none: not yet)", "gauge", () => {
    const counts = new Map<string, number>();
    for (const name of sources.connections()) {
      const label = name ?? "none";
      const key = counts.has(label) || counts.size < MAX_CLIENT_LABELS ? label : "other";
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([client, value]) => ({ value, labels: { client } }));
  });
  // Pools (SPEC §7 "Pools"), by their queue's key (pool:NAME, labels:k=v,…, runner:NAME): what waits and what runs are
  // the database's (the same on every server sharing it: aggregate them with max), the claims this server's runners made.
  add(
    "spool_pool_queued",
    "Accepted commands waiting in a pool's queue for a free runner, by pool (the database's, as every server sees it)",
    "gauge",
    async () => {
      const rows = await sql<{ pool: string; n: number | string }>`select pool, count(*) as n from runner_queue group by pool`.execute(sources.store.db);
      const counts = new Map(rows.rows.map((r) => [r.pool, Number(r.n)]));
      for (const name of sources.pools()) if (!counts.has(`pool:${name}`)) counts.set(`pool:${name}`, 0);
      return [...counts].map(([pool, value]) => ({ value, labels: { pool } }));
    },
  );
  add("spool_pool_running", "Commands of a pool running now, by pool (the database's, as every server sees it)", "gauge", async () => {
    const rows = await sql<{ pool: string | null; n: number | string }>`
      select ${jsonText(sources.store.db, "log.attributes", "queue")} as pool, count(*) as n from entries log
      where log.scheme = 'log' and log.status = ${ENTRY.done}
        and exists (select 1 from entries ch where ch.producer_id = log.id and ch.status = ${ENTRY.streaming})
      group by 1`.execute(sources.store.db);
    const counts = new Map(rows.rows.filter((r) => r.pool !== null).map((r) => [r.pool!, Number(r.n)]));
    for (const name of sources.pools()) if (!counts.has(`pool:${name}`)) counts.set(`pool:${name}`, 0);
    return [...counts].map(([pool, value]) => ({ value, labels: { pool } }));
  });
  add(
    "spool_pool_claim_seconds",
    "Seconds from a pool's command's accept to its runner's start (its wait in the queue included), by pool, on this server's runners",
    "histogram",
    () => [...meter.claims].flatMap(([pool, buckets]) => histogram("spool_pool_claim_seconds", buckets, { pool })),
  );
  add("spool_runners", "Runners attached to this server, by backend", "gauge", () => {
    const counts = new Map<string, number>(BACKEND_NAMES.map((name) => [name, 0]));
    for (const backend of sources.runners()) counts.set(backend, (counts.get(backend) ?? 0) + 1);
    return [...counts].map(([backend, value]) => ({ value, labels: { backend } }));
  });
}

let processRegistry: Registry | null = null;

/** prom-client's process metrics, set up once a process (their event-loop monitor and GC observer run for good). */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** A Buckets' figures as Prometheus's cumulative buckets, sum and count (each with `labels`). */
function histogram(name: string, buckets: Buckets, labels: Labels = {}): Value[] {
  const values: Value[] = [];
  let cumulative = 0;
  buckets.bounds.forEach((bound, i) => {
    cumulative += buckets.counts[i]!;
    values.push({ value: cumulative, labels: { ...labels, le: bound }, metricName: `${name}_bucket` });
  });
  values.push({ value: buckets.count, labels: { ...labels, le: "+Inf" }, metricName: `${name}_bucket` });
  values.push({ value: buckets.sum, labels, metricName: `${name}_sum` });
  values.push({ value: buckets.count, labels, metricName: `${name}_count` });
  return values;
}
