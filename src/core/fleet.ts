import { keyWords, labelsText, type RunnerTarget } from "../protocol/pool-keys.js";
import type { PoolInfo, QueuedCommand } from "../protocol/pools.js";
import type { RunnerState } from "../protocol/runner.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import { SpoolError } from "../rpc/errors.js";
import type { ClusterLink } from "./cluster.js";
import type { CoreDeps } from "./deps.js";
import type { Lifecycle } from "./lifecycle/index.js";
import { configuredPool, inTarget, poolsOf, type RunnerFacts, targetOfKey } from "./runners/pools.js";
import { ENTRY } from "./status.js";

/** A runner of the fleet: what it said at attach, where it is, what it does about new work, and what it runs. */
export interface FleetRunner extends RunnerFacts {
  embedded: boolean;
  /** The server it is attached to, `host:port`. */
  server: string;
  state: RunnerState;
  /** A gone runner: when its name and producers are given up (ms since the epoch). */
  heldUntil: number | null;
  /** Commands it runs now (its producers with an open channel, on every server). */
  running: number;
  /** The configured pools it is in. */
  pools: string[];
  /** Attached here and resting after failed starts: until when, and how many failed in a row. */
  resting?: { until: number; failedStarts: number };
}

/**
 * The fleet as every client shows it (`runner/list`, `runner/pools`, `runner/queue`, the page, `spool runners`): the
 * runners attached to every server sharing the database, the pools they make up, and the commands that wait for them.
 */
export class Fleet {
  constructor(
    private readonly deps: CoreDeps,
    private readonly lifecycle: Lifecycle,
    private readonly cluster: ClusterLink,
  ) {}

  /** The project's runners on every server (attached here, gone from here with work, attached to the others), by name. */
  async runners(project: ProjectRef): Promise<FleetRunner[]> {
    const me = this.cluster.serverId;
    const here = await this.cluster.serverLabel(me);
    const running = await this.deps.repos.producers.countByRunner(project.id, ENTRY.streaming);
    const config = this.deps.config;
    const list: FleetRunner[] = [];
    const add = (
      r: RunnerFacts,
      extra: { embedded: boolean; server: string; state: RunnerState; heldUntil: number | null; resting?: FleetRunner["resting"] },
    ) => list.push({ ...r, ...extra, running: running.get(r.name) ?? 0, pools: poolsOf(config, r) });
    const runners = this.lifecycle.runners;
    for (const r of runners.list(project.id)) {
      const embedded = r.embedded;
      const resting = r.restingUntil > Date.now() ? { resting: { until: r.restingUntil, failedStarts: r.failedStarts } } : {};
      add(
        { ...r, serverId: me, attachedBy: embedded ? null : r.attachedBy },
        { embedded, server: here, state: r.draining ? "draining" : "claiming", heldUntil: null, ...resting },
      );
    }
    // Gone, with work: its name (and its producers) wait for it until the grace ends.
    for (const { runner: r, until } of runners.held(project.id)) {
      if (!list.some((x) => x.name === r.name)) add({ ...r, serverId: me }, { embedded: r.embedded, server: here, state: "gone", heldUntil: until });
    }
    for (const r of await this.cluster.runnersElsewhere(project.id)) {
      if (list.some((x) => x.name === r.name)) continue;
      add(r, { embedded: false, server: await this.cluster.serverLabel(r.serverId), state: r.draining ? "draining" : "claiming", heldUntil: null });
    }
    return list.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Per pool: the configured ones, and every other queue with commands waiting (a label selector, a runner's name). */
  async pools(project: ProjectRef): Promise<PoolInfo[]> {
    const config = this.deps.config;
    const runners = (await this.runners(project)).filter((r) => !r.embedded && r.state !== "gone");
    const counts = new Map((await this.deps.repos.queue.queueCounts(project.id)).map((c) => [c.pool, c]));
    const keys = [...new Set([...Object.keys(config.pools).map((name) => `pool:${name}`), ...counts.keys()])];
    const pools: PoolInfo[] = [];
    for (const key of keys) {
      const target = targetOfKey(key);
      if (!target) continue;
      const members = runners.filter((r) => inTarget(config, r, target));
      const claiming = members.filter((r) => r.state === "claiming");
      const queued = counts.get(key);
      const configured = target.kind === "pool" ? config.pools[target.name] : undefined;
      pools.push({
        key,
        name: target.kind === "labels" ? labelsText(target.labels) : target.name,
        configured: configured !== undefined,
        labels: configured ? configured.labels : target.kind === "labels" ? { ...target.labels } : {},
        principals: configured?.principals ?? null,
        runners: members.map((r) => r.name),
        capacity: claiming.some((r) => r.capacity === null) ? null : claiming.reduce((n, r) => n + (r.capacity ?? 0), 0),
        running: members.reduce((n, r) => n + r.running, 0),
        queued: queued?.n ?? 0,
        draining: members.filter((r) => r.state === "draining").length,
        oldestQueuedAt: queued?.oldest ?? null,
      });
    }
    return pools.sort((a, b) => Number(b.configured) - Number(a.configured) || keyWords(a.key).localeCompare(keyWords(b.key)));
  }

  /** The commands that wait for a runner, in the order runners take them (per queue), with how many wait in all. */
  async queue(project: ProjectRef, pool: string | undefined, limit: number): Promise<{ queued: QueuedCommand[]; total: number }> {
    const target = pool === undefined ? null : queueTarget(pool);
    const { rows, total } = await this.deps.repos.queue.listQueued(project.id, pool, limit);
    // A configured pool's queue may be empty; a pool name the configuration does not know (and no command waits in,
    // as may happen after it is removed) is NOT_FOUND naming the known ones, not an empty queue.
    if (total === 0 && target?.kind === "pool") configuredPool(this.deps.config, target.name);
    return { queued: rows, total };
  }

  /** Where one queued command waits: its queue, its position there, since when; null when it waits in none. */
  async place(producerId: number): Promise<{ pool: string; position: number; since: number } | null> {
    const place = await this.deps.repos.queue.queuePlace(producerId);
    return place && { pool: place.pool, position: place.position, since: place.queuedAt };
  }
}

/** The target a queue's name given by a client names; INVALID_PARAMS when it is none (`linux` for `pool:linux`). */
function queueTarget(key: string): RunnerTarget {
  const target = key.includes(":") ? targetOfKey(key) : null;
  if (target && (target.kind === "labels" || target.name !== "")) return target;
  throw new SpoolError("INVALID_PARAMS", `${JSON.stringify(key)} is not a queue's name: pool:NAME, labels:k=v,… or runner:NAME (runner/pools lists them)`, {
    pool: key,
  });
}
