import { ReadCap } from "../rpc/read-cap.js";
import { Audit } from "./activity/audit.js";
import { Deadlines } from "./activity/deadlines.js";
import { Activity } from "./activity/index.js";
import { Notifications } from "./activity/notify/service.js";
import { ActivityWrites } from "./activity/writes.js";
import { ClusterLink } from "./cluster.js";
import { ProducerControls } from "./controls.js";
import { Devices } from "./credentials/devices.js";
import { Principals } from "./credentials/principals.js";
import type { CoreDeps } from "./deps.js";
import { Entries } from "./entries.js";
import { Fleet } from "./fleet.js";
import { Lifecycle } from "./lifecycle/index.js";
import { Owners } from "./producers/owners.js";
import { ProducerRegistry } from "./producers/registry.js";
import { Proposals } from "./proposals.js";
import { RunnerRegistry } from "./runners/registry.js";
import { Budgets } from "./runs/budgets.js";
import { Conversation } from "./runs/conversation.js";
import { RunStates } from "./runs/index.js";
import { Sessions } from "./session.js";
import { WatcherHub } from "./streams/watchers.js";

/**
 * The core: the producer lifecycle (with ownership, runners and watchers), and the services that own the
 * queries of runs, entries and proposals. Built once at start-up; handlers, plugins, the agent loop and the
 * runners go through it.
 */
export interface Core {
  readonly lifecycle: Lifecycle;
  /** Input, end of input, signals and resizes relayed to running producers' owners. */
  readonly controls: ProducerControls;
  /** Runs: status changes, loops, history, and the reads of them. */
  readonly runs: RunStates;
  /** What runs may spend and spent (budgets, defaults from config). */
  readonly budgets: Budgets;
  /** What the agent loop keeps of a run: the run, its project, its messages, turns and usage. */
  readonly conversation: Conversation;
  /** Entries and their channels' bytes: found, listed, read by line or in stored order, replayed to watchers. */
  readonly entries: Entries;
  /** Pending proposals and what a model's tool calls became. */
  readonly proposals: Proposals;
  readonly sessions: Sessions;
  /** Credentials other than the home's token file: who they name, their roles and scopes. */
  readonly principals: Principals;
  /** Paired devices: browsers signed in with a one-time code, kept in the store. */
  readonly devices: Devices;
  /** Receivers of notifications and the outbox they are sent from (`notify/*`). */
  readonly notifications: Notifications;
  /** The append-only trail of who did what (`audit/list`). */
  readonly audit: Audit;
  /** The audit and notification rows, written a moment after what they record (activity/writes.ts); stopped before the store closes. */
  readonly activityWrites: ActivityWrites;
  /** Proposals nobody decided within decisionTimeoutMs are rejected. */
  readonly deadlines: Deadlines;
  readonly producers: ProducerRegistry;
  readonly runners: RunnerRegistry;
  readonly watchers: WatcherHub;
  /** The server-wide cap on bytes of reads in flight (limits.maxReadBytesInFlight): entry/get bodies and replay pages take their bytes from it. */
  readonly reads: ReadCap;
  /** This server among the servers sharing its database (with SQLite, alone). */
  readonly cluster: ClusterLink;
  /** The runners of every server, the pools they make up and the commands waiting for them. */
  readonly fleet: Fleet;
  /**
   * Every table's queries, for the server's start-up, plugins and operations. The handlers of src/features and the
   * agent loop never use it: they call the services above (test/architecture.test.ts refuses `repos` there).
   */
  readonly repos: CoreDeps["repos"];
  readonly config: CoreDeps["config"];
  /** Runs a filter's registered functions over a value (entry:model-view, …). */
  readonly applyFilter: CoreDeps["applyFilter"];
}

export function createCore(deps: CoreDeps): Core {
  const producers = new ProducerRegistry();
  const runners = new RunnerRegistry();
  // A holder whose peer has read nothing for a quarter of the liveness timeout (one ping interval) is closed while reads wait.
  const reads = new ReadCap(deps.config.limits.maxReadBytesInFlight, { stallMs: deps.config.livenessTimeoutMs / 4 });
  const watchers = new WatcherHub(deps.config.limits.maxWatcherBufferBytes, { reads, maxChunkBytes: deps.config.limits.maxChunkBytes });
  const lifecycle = new Lifecycle(deps, producers, new Owners(), runners, watchers);
  const cluster = new ClusterLink(deps, lifecycle, watchers);
  lifecycle.useCluster(cluster);
  cluster.onQueued((projectId, pool) => lifecycle.queuedElsewhere(projectId, pool));
  cluster.onDrain((projectId, name, draining) => lifecycle.drainedElsewhere(projectId, name, draining));
  const writes = new ActivityWrites(deps);
  const budgets = new Budgets(deps);
  const audit = new Audit(deps, writes);
  const notifications = new Notifications(deps, writes);
  const deadlines = new Deadlines(deps, (project, target, options) => lifecycle.reject(project, target, options));
  lifecycle.useActivity(new Activity(audit, notifications, deadlines));
  return {
    lifecycle,
    controls: new ProducerControls(lifecycle, deps, cluster),
    cluster,
    fleet: new Fleet(deps, lifecycle, cluster),
    runs: new RunStates(deps, budgets),
    budgets,
    conversation: new Conversation(deps),
    entries: new Entries(deps, watchers),
    proposals: new Proposals(deps),
    sessions: sessionsOf(deps, cluster),
    principals: new Principals(deps, cluster, {
      withdraw: (principal, options) => lifecycle.withdrawProposalsOf(principal, options),
      noteRevoked: (principal) => lifecycle.noteRevoked(principal),
    }),
    devices: new Devices(deps, cluster, audit),
    notifications,
    audit,
    activityWrites: writes,
    deadlines,
    producers,
    runners,
    watchers,
    reads,
    repos: deps.repos,
    config: deps.config,
    applyFilter: (name, value) => deps.applyFilter(name, value),
  };
}

/** Sessions, told of projects another server removed. */
function sessionsOf(deps: CoreDeps, cluster: ClusterLink): Sessions {
  const sessions = new Sessions(deps);
  cluster.onProjectDeleted((projectId) => void sessions.projectDeleted(projectId));
  return sessions;
}

export type { CoreDeps } from "./deps.js";
export { runTransition } from "./lifecycle/run-transitions.js";
export { ENTRY, entryStatusWord, OPEN_RUN, RUN } from "./status.js";
