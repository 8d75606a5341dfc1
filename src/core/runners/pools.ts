import type { SpoolConfig } from "../../config/config.js";
import { labelsMatch, labelsText, type RunnerTarget, targetKey } from "../../protocol/pool-keys.js";
import type { Role } from "../../protocol/roles.js";
import { type ContainerInfo, type SandboxInfo, sandboxModes } from "../../protocol/runner.js";
import type { NetworkKind, SandboxModeName } from "../../protocol/sandbox.js";
import type { PoolFact } from "../../protocol/views.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { SpoolError } from "../../rpc/errors.js";
import { invalid } from "../refusals.js";

/*
 * Runner pools (SPEC §7 "Pools"): which runners a target names (one runner, a configured pool, a label selector), what
 * they have in common when a proposal is made (the `pool` fact: the weakest of them), and which runner may take a
 * command accepted for it (`admits`: recorded with the command, checked by every take, on every server).
 */

/** A runner as any server sees it: attached here (the registry) or to another server of the database (its row). */
export interface RunnerFacts {
  name: string;
  /** The server it is attached to (this one's id with SQLite). */
  serverId: number;
  labels: Record<string, string>;
  capacity: number | null;
  backend: "local" | "docker" | "ssh";
  description: string | null;
  /** The principal whose credential attached it, and that credential's role then; null: the server's embedded runner. */
  attachedBy: { name: string; role: Role } | null;
  sandbox: SandboxInfo;
  container?: ContainerInfo;
  host: string | null;
  /** Where it runs the project root's commands (its --root); null: at the root's own path. */
  root: string | null;
  attachedAt: number;
  default: boolean;
  draining: boolean;
}

/** Which runners may take a command accepted for a pool (or a runner at its capacity): recorded with it in the queue. */
export interface Admits {
  /** The principals whose runners may (the ones shown); null: any. */
  principals: string[] | null;
  /** Their backends; null: any. */
  backends: string[] | null;
  /** The sandbox mode it was proposed in: a runner that cannot give it never takes it. */
  mode: SandboxModeName;
  /** It runs with a network allowlist: only a runner that enforces one. */
  egress: boolean;
  /** workspace-write: the networks shown; null: not shown (any). */
  networks: NetworkKind[] | null;
  /** Where its runners run the project root's commands, as the cwd shown says (a runner's `root`; null: the root's own path); null or absent: any. */
  roots?: (string | null)[] | null;
}

/** The target a pool reference of the configuration names, checked: an unknown pool name is NOT_FOUND naming the known ones. */
export function configuredPool(config: SpoolConfig, name: string): { labels: Record<string, string>; principals: string[] | null } {
  const pool = config.pools[name];
  if (pool) return pool;
  const known = Object.keys(config.pools).sort();
  throw new SpoolError(
    "NOT_FOUND",
    `No pool named "${name}" is configured (${known.length > 0 ? `configured: ${known.join(", ")}` : 'none is: add one to config.json, "pools": {"NAME": {"labels": {…}}}'}); name a runner, a configured pool, or {labels: {…}}`,
    { pool: name, pools: known },
  );
}

/** Whether a runner is one of a target's: the runner named, a configured pool's (its labels and, when named, principals), a selector's. */
export function inTarget(config: SpoolConfig, runner: Pick<RunnerFacts, "name" | "labels" | "attachedBy">, target: RunnerTarget): boolean {
  switch (target.kind) {
    case "runner":
      return runner.name === target.name;
    case "labels":
      return runner.attachedBy !== null && labelsMatch(runner.labels, target.labels);
    case "pool": {
      const pool = config.pools[target.name];
      if (!pool || runner.attachedBy === null || !labelsMatch(runner.labels, pool.labels)) return false;
      return pool.principals === null || pool.principals.includes(runner.attachedBy.name);
    }
  }
}

/** The target a queue key names (`pool:NAME`, `labels:k=v,…`, `runner:NAME`); null for a key this server cannot read. */
export function targetOfKey(key: string): RunnerTarget | null {
  const colon = key.indexOf(":");
  const kind = key.slice(0, colon);
  const rest = key.slice(colon + 1);
  if (kind === "runner" || kind === "pool") return { kind, name: rest };
  if (kind !== "labels") return null;
  const labels: Record<string, string> = {};
  for (const pair of rest.split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) return null;
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { kind: "labels", labels };
}

/** Whether a runner serves the queue `key`: it is the runner named, or one of the pool's (the embedded runner is in no pool). */
export function serves(config: SpoolConfig, runner: Pick<RunnerFacts, "name" | "labels" | "attachedBy"> & { embedded?: boolean }, key: string): boolean {
  const target = targetOfKey(key);
  return target !== null && runner.embedded !== true && inTarget(config, runner, target);
}

/** The configured pools a runner is in, by name (runner/list). */
export function poolsOf(config: SpoolConfig, runner: Pick<RunnerFacts, "name" | "labels" | "attachedBy">): string[] {
  return Object.keys(config.pools)
    .filter((name) => inTarget(config, runner, { kind: "pool", name }))
    .sort();
}

const unique = <T>(values: T[]): T[] => [...new Set(values)].sort();

/**
 * The `pool` fact of a target: its runners attached now (`members`, on every server; the embedded one is never in a
 * pool), who attached them, their backends, the modes every one gives, the networks they say, whether all enforce an
 * allowlist. A pool with no runner attached is NO_RUNNER, unless the configuration names its principals: then the
 * command waits for one of theirs.
 */
export function poolFact(config: SpoolConfig, project: ProjectRef, target: Exclude<RunnerTarget, { kind: "runner" }>, members: RunnerFacts[]): PoolFact {
  const configured = target.kind === "pool" ? configuredPool(config, target.name) : null;
  const labels = configured ? configured.labels : (target as { labels: Record<string, string> }).labels;
  const name = target.kind === "pool" ? target.name : labelsText(target.labels);
  if (members.length === 0 && !configured?.principals) {
    throw new SpoolError(
      "NO_RUNNER",
      `No runner of ${target.kind === "pool" ? `pool "${name}"` : `the labels ${name}`} is attached to project "${project.name}"; attach one (spool runner ${Object.entries(
        labels,
      )
        .map(([k, v]) => `--label ${k}=${v}`)
        .join(" ")}), or name its principals in config.json ("pools": {"NAME": {"labels": …, "principals": […]}}) so that commands wait for one`,
      { pool: targetKey(target), labels },
    );
  }
  const modes = members.length === 0 ? [] : members.map((m) => sandboxModes(m.sandbox)).reduce((common, next) => common.filter((mode) => next.includes(mode)));
  return {
    name,
    configured: configured !== null,
    labels: { ...labels },
    attached: members.length,
    principals: members.length === 0 ? [...configured!.principals!].sort() : unique(members.map((m) => m.attachedBy!.name)),
    backends: unique(members.map((m) => m.backend)),
    modes: [...modes].sort(),
    networks: unique(members.flatMap((m) => (m.sandbox.network ? [m.sandbox.network] : []))),
    egress: members.length > 0 && members.every((m) => m.sandbox.egress === true),
    roots: rootsOf(members),
  };
}

/** Each root of `runners` once, the root's own path (null) first. */
function rootsOf(runners: Pick<RunnerFacts, "root">[]): (string | null)[] {
  const roots = unique(runners.flatMap((r) => (r.root === null ? [] : [r.root])));
  return runners.some((r) => r.root === null) ? [null, ...roots] : roots;
}

/** What a pool gives as one runner would say it (sandbox.ts's choice of mode, the refusals): the weakest of its runners. */
export function poolSandbox(fact: PoolFact): SandboxInfo {
  return {
    kind: "none",
    readOnly: fact.modes.includes("read-only"),
    detail: `pool ${fact.name}: the modes every one of its ${fact.attached} runner${fact.attached === 1 ? "" : "s"} gives`,
    modes: fact.modes.length > 0 ? fact.modes : ["full"],
    ...(fact.networks.length === 1 ? { network: fact.networks[0]! } : {}),
    egress: fact.egress,
  };
}

/** Which runners may take a command accepted for a pool: those of the principals and backends shown, giving its mode (and network). */
export function poolAdmits(fact: PoolFact, mode: SandboxModeName, egress: boolean): Admits {
  return {
    principals: fact.principals,
    backends: fact.attached > 0 ? fact.backends : null,
    mode,
    egress,
    networks: mode === "workspace-write" && fact.networks.length > 0 ? fact.networks : null,
    // The cwd shown: with none attached, it said any runner's root (cwdText in proposal-facts.ts).
    roots: fact.attached > 0 && fact.roots ? fact.roots : null,
  };
}

/** Which runners may take a command accepted for one runner that was busy: a runner under its name attached by the same principal. */
export function runnerAdmits(runner: Pick<RunnerFacts, "attachedBy" | "backend" | "root">, mode: SandboxModeName, egress: boolean): Admits {
  return { principals: runner.attachedBy ? [runner.attachedBy.name] : null, backends: [runner.backend], mode, egress, networks: null, roots: [runner.root] };
}

/** Whether `runner` may take a command recorded with `admits`. */
export function admitted(runner: Pick<RunnerFacts, "attachedBy" | "backend" | "sandbox" | "root">, admits: Admits): boolean {
  if (admits.principals !== null && (runner.attachedBy === null || !admits.principals.includes(runner.attachedBy.name))) return false;
  if (admits.backends !== null && !admits.backends.includes(runner.backend)) return false;
  if (!sandboxModes(runner.sandbox).includes(admits.mode)) return false;
  if (admits.mode === "read-only" && !runner.sandbox.readOnly) return false;
  if (admits.egress && runner.sandbox.egress !== true) return false;
  if (admits.networks !== null && (!runner.sandbox.network || !admits.networks.includes(runner.sandbox.network))) return false;
  if (admits.roots && !admits.roots.includes(runner.root)) return false;
  return true;
}

/** `admits` as stored, read back; a row this server cannot read admits nobody (a newer server's, never taken for less). */
export function admitsOf(text: string): Admits | null {
  try {
    const a = JSON.parse(text) as Partial<Admits>;
    const list = (v: unknown) => (v === null ? null : Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined);
    const principals = list(a.principals);
    const backends = list(a.backends);
    const networks = list(a.networks) as NetworkKind[] | null | undefined;
    // Roots: absent in a row from before them (any root, as its cwd was shown then); otherwise each a path or null.
    const roots =
      a.roots === undefined || a.roots === null
        ? null
        : Array.isArray(a.roots) && a.roots.every((r) => r === null || typeof r === "string")
          ? a.roots
          : undefined;
    if (
      principals === undefined ||
      backends === undefined ||
      networks === undefined ||
      roots === undefined ||
      typeof a.mode !== "string" ||
      typeof a.egress !== "boolean"
    )
      return null;
    return { principals, backends, mode: a.mode as SandboxModeName, egress: a.egress, networks, roots };
  } catch {
    return null;
  }
}

/** The pool a proposal's `runner` names, as a target; a configured pool's name is checked. */
export function poolTarget(config: SpoolConfig, ref: { pool: string } | { labels: Record<string, string> }): Exclude<RunnerTarget, { kind: "runner" }> {
  if ("pool" in ref) {
    configuredPool(config, ref.pool);
    return { kind: "pool", name: ref.pool };
  }
  if (Object.keys(ref.labels).length === 0) throw invalid("runner", "a label selector names at least one label");
  return { kind: "labels", labels: { ...ref.labels } };
}

/** What a runner attached here tells the other servers of itself (runner_locations.info). */
export function locationInfo(runner: Omit<RunnerFacts, "serverId" | "draining" | "default">): string {
  return JSON.stringify({
    labels: runner.labels,
    capacity: runner.capacity,
    backend: runner.backend,
    description: runner.description,
    attachedBy: runner.attachedBy,
    sandbox: runner.sandbox,
    ...(runner.container ? { container: runner.container } : {}),
    host: runner.host,
    ...(runner.root ? { root: runner.root } : {}),
    attachedAt: runner.attachedAt,
  });
}

/** A runner of another server from its row; null for a row this server cannot read (from before pools, or a newer server's). */
export function factsFromLocation(
  row: { name: string; server_id: number; is_default: number; since: number; info: string },
  draining: boolean,
): RunnerFacts | null {
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(row.info) as Record<string, unknown>;
  } catch {
    return null;
  }
  const sandbox = info.sandbox as SandboxInfo | undefined;
  const by = info.attachedBy as { name?: unknown; role?: unknown } | undefined;
  const backend = info.backend;
  if (!sandbox || typeof sandbox.kind !== "string" || typeof by?.name !== "string" || (backend !== "local" && backend !== "docker" && backend !== "ssh"))
    return null;
  const labels = info.labels && typeof info.labels === "object" ? (info.labels as Record<string, string>) : {};
  return {
    name: row.name,
    serverId: row.server_id,
    labels,
    capacity: typeof info.capacity === "number" ? info.capacity : null,
    backend,
    description: typeof info.description === "string" ? info.description : null,
    attachedBy: { name: by.name, role: by.role as Role },
    sandbox,
    ...(info.container ? { container: info.container as ContainerInfo } : {}),
    host: typeof info.host === "string" ? info.host : null,
    root: typeof info.root === "string" ? info.root : null,
    attachedAt: typeof info.attachedAt === "number" ? info.attachedAt : row.since,
    default: row.is_default === 1,
    draining,
  };
}
