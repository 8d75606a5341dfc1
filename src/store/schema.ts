import type { Generated, Insertable, Selectable, Updateable } from "kysely";

export interface ProjectTable {
  id: Generated<number>;
  name: string;
  root: string;
  created_at: number;
  /** The last N given to a run named run-N in this project (migration 007). */
  last_run_number: Generated<number>;
}

export interface RunTable {
  id: Generated<number>;
  project_id: number;
  alias: string;
  model: string | null;
  mode: "ask" | "act";
  status: number;
  turn: Generated<number>;
  attributes: Generated<string>;
  /** Migration 005. */
  title: Generated<string | null>;
  created_at: number;
  updated_at: number;
  /** Migration 022: what the run spent (tokens, micro-dollars, milliseconds of work) and its own budget (JSON). */
  spent_tokens: Generated<number>;
  spent_micro_usd: Generated<number>;
  spent_ms: Generated<number>;
  budget: Generated<string | null>;
  /** Migration 022: the message holding the latest compaction's summary (0: none), and the last message it replaced. */
  context_from: Generated<number>;
  context_after: Generated<number>;
}

export interface LoopTable {
  id: Generated<number>;
  run_id: number;
  seq: number;
  prompt: string;
  mode: "ask" | "act";
  status: number;
  created_at: number;
  finished_at: number | null;
}

export interface EntryTable {
  id: Generated<number>;
  run_id: number;
  path: string;
  scheme: string;
  turn: number;
  status: number;
  attributes: Generated<string>;
  body: Generated<string>;
  streamed: Generated<number>;
  producer_id: number | null;
  channel: number | null;
  bytes: Generated<number>;
  newlines: Generated<number>;
  ends_with_newline: Generated<number>;
  last_seq: Generated<number>;
  /** The principal a proposal's log entry was made by (migration 017); null for every other entry. */
  proposed_by: Generated<string | null>;
  created_at: number;
  updated_at: number;
}

export interface ChunkTable {
  id: Generated<number>;
  entry_id: number;
  seq: number;
  byte_offset: number;
  line_offset: number;
  newlines: number;
  data: Buffer;
}

export interface MessageTable {
  id: Generated<number>;
  run_id: number;
  loop_id: number | null;
  turn: number;
  role: "system" | "user" | "assistant" | "tool";
  body: string;
  created_at: number;
}

/** Token usage of one model call (migration 004). */
export interface ModelUsageTable {
  id: Generated<number>;
  run_id: number;
  loop_id: number | null;
  turn: number;
  model: string;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Migration 022. */
  cache_read_tokens: Generated<number>;
  cache_write_tokens: Generated<number>;
  cost_micro_usd: Generated<number>;
  created_at: number;
}

/** An "always allow" rule of a run (migration 005). */
export interface AllowRuleTable {
  id: Generated<number>;
  run_id: number;
  tool: string;
  command: string;
  cwd: string;
  env: string;
  /** The runner the proposal named; "" when it named none. */
  runner: string;
  /** The sandbox mode it was accepted in (migration 010); null: a rule from before, which matches any mode but full. */
  sandbox: "read-only" | "workspace-write" | "full" | null;
  created_by: string;
  created_at: number;
}

/** Migration 013: a credential's principal; the token itself is never stored, only sha256 of its secret. */
export interface PrincipalTable {
  id: Generated<number>;
  name: string;
  role: "runner" | "viewer" | "agent" | "person" | "admin";
  /** JSON array of project names; null: every project. */
  projects: string | null;
  token_id: string;
  secret_hash: string;
  created_by: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  /**
   * Migration 023: whose bounds it counts against, as that principal's token id: its own when the home minted it,
   * else its minter's share (null only in a row of a database being migrated).
   */
  share: string | null;
}

/** Migration 016: a paired device (a browser signed in with a one-time code); only digests of its two secrets. */
export interface DeviceTable {
  id: Generated<number>;
  /** The public id `spool devices` shows; the cookie is `<device_id>.<secret>`. */
  device_id: string;
  name: string;
  principal: string;
  role: "runner" | "viewer" | "agent" | "person" | "admin";
  /** The credential whose code paired it: a principal's token id, or `home:<id>` for the home's token file. */
  credential: string;
  secret_hash: string;
  key_hash: string;
  created_at: number;
  created_address: string | null;
  last_seen_at: number;
  last_address: string | null;
  /** How long it lives past its last use. */
  idle_ms: number;
  /** Its parent credential's expiry (null: never). */
  parent_expires_at: number | null;
  revoked_at: number | null;
}

/** Migration 014: a receiver of notifications (`spool notify add`). */
export interface NotifyTargetTable {
  id: Generated<number>;
  name: string;
  url: string;
  /** The HMAC key every delivery to it is signed with (shown once, to the admin who added it). */
  secret: string;
  /** JSON array of event names. */
  events: string;
  format: "json" | "slack" | "ntfy";
  /** JSON array of project names; null: every project. */
  projects: string | null;
  /** 1: its bodies carry env values; 0 (the default): env names only (migration 017). */
  include_env_values: Generated<number>;
  created_by: string;
  created_at: number;
  /** When a delivery last reached it (its 2xx); null: none yet (migration 019). */
  delivered_at: number | null;
  /** Since when its deliveries fail (the first failure since the last success); null: they do not. */
  failing_since: number | null;
  /** The error of its latest failed attempt while failing. */
  failure: string | null;
}

/** Migration 015: one event for receivers, its json body stored once whatever the number of receivers. */
export interface NotifyEventTable {
  id: Generated<number>;
  /** Random; each receiver's delivery id is derived from it and the receiver. */
  uuid: string;
  event: string;
  /** The json body without its `delivery` (every format is rendered from it, the same bytes each attempt). */
  payload: string;
  /** Deliveries of it still owed (it is deleted when none is). */
  pending: number;
  created_at: number;
}

/** Migration 015: one delivery still owed to a target. */
export interface NotifyDeliveryTable {
  id: Generated<number>;
  target_id: number;
  event_id: number;
  /** The X-Spool-Delivery id of a delivery queued before migration 015; null: derived (core/activity/notify/outbox.ts). */
  delivery: string | null;
  attempts: Generated<number>;
  next_at: number;
  /** Until when a server's attempt holds the row (0: nobody's). */
  claimed_until: Generated<number>;
  last_error: string | null;
  created_at: number;
}

/** Migration 014: one act of the audit trail; never updated or deleted. */
export interface AuditTable {
  id: Generated<number>;
  at: number;
  action: string;
  principal: string;
  /** Migration 020: how the act's connection reached the server, as the server verified it (unix, tcp, page, mcp, acp, in-process). */
  transport: string | null;
  /** The client its caller claims to be. */
  client: string | null;
  project: string | null;
  run: string | null;
  path: string | null;
  /** JSON object. */
  detail: Generated<string>;
}

/** Migration 021: proposals waiting per run (`scope` 'run', `key` its id) and per principal ('principal', its name), kept by triggers; a row lives while `n` > 0. */
export interface PendingCountTable {
  scope: "run" | "principal";
  key: string;
  n: number;
}

export interface Database {
  projects: ProjectTable;
  runs: RunTable;
  loops: LoopTable;
  entries: EntryTable;
  chunks: ChunkTable;
  messages: MessageTable;
  model_usage: ModelUsageTable;
  allow_rules: AllowRuleTable;
  principals: PrincipalTable;
  devices: DeviceTable;
  notify_targets: NotifyTargetTable;
  notify_events: NotifyEventTable;
  notify_deliveries: NotifyDeliveryTable;
  audit: AuditTable;
  pending_counts: PendingCountTable;
  servers: ServerTable;
  producer_owners: ProducerOwnerTable;
  run_leases: RunLeaseTable;
  runner_locations: RunnerLocationTable;
  runner_names: RunnerNameTable;
  runner_queue: RunnerQueueTable;
  cluster_events: ClusterEventTable;
}

export type ProjectRow = Selectable<ProjectTable>;
export type PrincipalRow = Selectable<PrincipalTable>;
export type NewPrincipal = Insertable<PrincipalTable>;
export type DeviceRow = Selectable<DeviceTable>;
export type NewDevice = Insertable<DeviceTable>;
export type NotifyTargetRow = Selectable<NotifyTargetTable>;
export type NewNotifyTarget = Insertable<NotifyTargetTable>;
export type NotifyEventRow = Selectable<NotifyEventTable>;
export type NewNotifyEvent = Omit<Insertable<NotifyEventTable>, "pending">;
export type NotifyDeliveryRow = Selectable<NotifyDeliveryTable>;
export type AuditRow = Selectable<AuditTable>;
export type NewAudit = Insertable<AuditTable>;
export type RunRow = Selectable<RunTable>;
export type NewRun = Insertable<RunTable>;
export type RunUpdate = Updateable<RunTable>;
export type EntryRow = Selectable<EntryTable>;
export type NewEntry = Insertable<EntryTable>;
export type EntryUpdate = Updateable<EntryTable>;
export type ChunkRow = Selectable<ChunkTable>;

export type LoopRow = Selectable<LoopTable>;
export type MessageRow = Selectable<MessageTable>;
export type NewModelUsage = Insertable<ModelUsageTable>;
export type AllowRuleRow = Selectable<AllowRuleTable>;

/** One server start (migration 006). */
export interface ServerTable {
  id: Generated<number>;
  url: string;
  host: string;
  pid: number;
  started_at: number;
}

/** The server whose connection owns a running producer (migration 006). */
export interface ProducerOwnerTable {
  producer_id: number;
  server_id: number;
  since: number;
}

/** The server driving a run's agent loop (migration 006). */
export interface RunLeaseTable {
  run_id: number;
  server_id: number;
  since: number;
}

/** An announcement from one server to the others (migration 006). */
export interface ClusterEventTable {
  id: Generated<number>;
  server_id: number;
  /** Numbers the sending server's rows from 1 (migration 008). */
  seq: number;
  body: string;
  created_at: number;
  /** HMAC-SHA256 (hex) of server_id, seq, created_at and body under the bus key (migration 008). */
  mac: string;
}

/** The principal a project's runner name belongs to: the first that attached a runner under it (migration 018). */
export interface RunnerNameTable {
  id: Generated<number>;
  project_id: number;
  name: string;
  principal: string;
  created_at: number;
  /** 1: spool runners drain NAME; the runner takes nothing new (migration 025). */
  draining: Generated<number>;
}

/** The server a runner is attached to (migration 006), and what it said at attach (`info`, JSON; migration 025). */
export interface RunnerLocationTable {
  project_id: number;
  name: string;
  server_id: number;
  is_default: number;
  since: number;
  info: Generated<string>;
}

/** An accepted command waiting for a free runner of its pool (migration 025): `id` is its place in line. */
export interface RunnerQueueTable {
  id: Generated<number>;
  producer_id: number;
  project_id: number;
  /** The queue: `pool:NAME`, `labels:k=v,…`, `runner:NAME`. */
  pool: string;
  /** Which runners may take it (JSON: principals, backends, mode, egress, networks). */
  admits: string;
  queued_at: number;
}
