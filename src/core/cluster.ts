import type { BusHandlers, BusMessage } from "../cluster/bus.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import { type ErrorName, SpoolError } from "../rpc/errors.js";
import type { AcceptResult, CoreDeps, ForwardedAccept, ProducerTarget } from "./deps.js";
import type { Lifecycle } from "./lifecycle/index.js";
import { factsFromLocation, type RunnerFacts } from "./runners/pools.js";
import type { WatcherHub } from "./streams/watchers.js";

/** Controls waiting for another server's answer, at most. */
const MAX_PENDING_CONTROLS = 1000;
/** Chunks read at once when catching a watcher up with another server's appends. */
const CATCH_UP_PAGE = 32;

interface Pending {
  server: number;
  resolve(result: unknown): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

/**
 * This server's part in a cluster of servers sharing one database: what the
 * others announce reaches this server's connections and watchers; controls
 * for a producer whose owner is connected elsewhere go to that server; a
 * run's agent loop is driven by one server at a time (its lease); producers
 * and runs of a server that died are taken over, once. With SQLite (one
 * server) the bus has nobody to talk to and none of this costs anything.
 */
export class ClusterLink {
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Per watched channel: the last seq handed to this server's watchers from another server's appends. */
  readonly #cursor = new Map<number, number>();
  #kick: ((runId: number) => void) | null = null;
  #revoked: ((name: string, withdrawn: boolean) => void) | null = null;
  #devicesRevoked: ((ids: readonly string[]) => void) | null = null;
  #projectDeleted: ((projectId: number) => void) | null = null;
  #interrupt: ((runId: number, reason: string) => void) | null = null;
  /** Lease releases on their way, so a new lease of the same run waits for them. */
  readonly #releasing = new Map<number, Promise<void>>();
  readonly #labels = new Map<number, string>();
  #queued: ((projectId: number, pool: string) => void) | null = null;
  #drain: ((projectId: number, name: string, draining: boolean) => void) | null = null;

  constructor(
    private readonly deps: CoreDeps,
    private readonly lifecycle: Lifecycle,
    private readonly watchers: WatcherHub,
  ) {}

  get serverId(): number {
    return this.deps.bus.serverId;
  }

  get shared(): boolean {
    return this.deps.bus.shared;
  }

  /** Who drives runs here (the agent loop): told when another server asks this one to take a run's next steps. */
  /** Called when another server revoked a principal, and again (`withdrawn`) once it withdrew its waiting proposals. */
  onRevoked(revoked: (name: string, withdrawn: boolean) => void): void {
    this.#revoked = revoked;
  }

  /** Called when another server unpaired devices. */
  onDevicesRevoked(revoked: (ids: readonly string[]) => void): void {
    this.#devicesRevoked = revoked;
  }

  /** Called when another server removed a project. */
  onProjectDeleted(deleted: (projectId: number) => void): void {
    this.#projectDeleted = deleted;
  }

  /** Who takes queued commands here: told when another server queued one (a free runner here may take it). */
  onQueued(queued: (projectId: number, pool: string) => void): void {
    this.#queued = queued;
  }

  /** Who holds the runners here: told when another server drained one of them (or let it claim again). */
  onDrain(drain: (projectId: number, name: string, draining: boolean) => void): void {
    this.#drain = drain;
  }

  onKick(kick: (runId: number) => void): void {
    this.#kick = kick;
  }

  /** Who calls models here: told when a run driven here was aborted through another server. */
  onInterrupt(interrupt: (runId: number, reason: string) => void): void {
    this.#interrupt = interrupt;
  }

  /** A run was aborted here: the server calling its model, wherever it is, stops. */
  interruptElsewhere(runId: number, reason: string): void {
    if (this.shared) this.deps.bus.publish({ t: "interrupt", run: runId, reason });
  }

  /** What the bus calls with what the other servers said. */
  handlers(): BusHandlers {
    return {
      message: (message, from) => this.#message(message, from),
      chunk: (entryId, seq) => this.#catchUp(entryId, seq),
      gone: (servers) => this.#gone(servers),
    };
  }

  async #message(message: BusMessage, from: number): Promise<void> {
    switch (message.t) {
      case "notify":
        this.deps.notifyLocal(message.project, message.method, message.params);
        if (message.method === "stream/finished") await this.#finishedElsewhere(message.project, message.params as FinishedParams);
        return;
      case "control":
        // The owner may take its time (a command still starting): answered on the side, the bus goes on.
        void this.#applyControl(message);
        return;
      case "reply": {
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        clearTimeout(pending.timer);
        if (message.error) pending.reject(Object.assign(new Error(message.error.message), message.error));
        else pending.resolve(message.result);
        return;
      }
      case "accept":
        void this.#applyAccept(message);
        return;
      case "kick":
        this.#kick?.(message.run);
        return;
      case "interrupt":
        this.#interrupt?.(message.run, message.reason);
        return;
      case "owned":
        this.lifecycle.ownedElsewhere(message.producer);
        return;
      case "revoked":
        this.#revoked?.(message.name, message.withdrawn === true);
        return;
      case "devices-revoked":
        this.#devicesRevoked?.(message.ids);
        return;
      case "project-deleted":
        this.#projectDeleted?.(message.project);
        return;
      case "queued":
        this.#queued?.(message.project, message.pool);
        return;
      case "drain":
        this.#drain?.(message.project, message.name, message.draining);
        return;
      default:
        this.deps.log.warn(`cluster: server ${from} sent a message this server does not know: ${JSON.stringify(message).slice(0, 200)}`);
    }
  }

  /** Another server appended up to `seq`: this server's watchers of the channel get what they have not had, read from the table. */
  async #catchUp(entryId: number, seq: number): Promise<void> {
    // The agent's waits on this server wake for output appended on another (they read the store themselves).
    this.watchers.signals.touch(entryId, "data");
    if (!this.watchers.watching(entryId)) {
      this.#cursor.delete(entryId);
      return;
    }
    let after = Math.max(this.#cursor.get(entryId) ?? 0, this.watchers.floor(entryId));
    while (after < seq) {
      const page = await this.deps.repos.chunks.readChunksAfter(entryId, after, Math.min(CATCH_UP_PAGE, seq - after));
      if (page.length === 0) break;
      for (const chunk of page) this.watchers.publish(entryId, chunk.seq, chunk.data);
      after = page.at(-1)!.seq;
    }
    this.#cursor.set(entryId, after);
  }

  /** A producer finished on another server: this server forgets its owner, and its watchers get the last chunks, then the end. */
  async #finishedElsewhere(projectId: number, notice: FinishedParams): Promise<void> {
    const run = await this.deps.repos.runs.findRun(projectId, notice.run);
    const log = run && (await this.deps.repos.entries.findEntry(run.id, notice.path));
    if (!log) return;
    this.lifecycle.finishedElsewhere(log.id);
    for (const channel of await this.deps.repos.entries.listChannels(log.id)) {
      this.watchers.signals.touch(channel.id, "end");
      if (!this.watchers.watching(channel.id)) continue;
      await this.#catchUp(channel.id, channel.last_seq);
      this.#cursor.delete(channel.id);
      this.watchers.end(channel.id, { status: channel.status, ...(notice.outcome === "completed" ? { exit_code: notice.exit_code ?? null } : {}) });
    }
  }

  async #applyControl(message: Extract<BusMessage, { t: "control" }>): Promise<void> {
    const reply = (error?: { code?: unknown; message: string; data?: unknown }) =>
      this.deps.bus.publish({ t: "reply", to: message.from, id: message.id, ...(error ? { error } : {}) });
    const owner = this.lifecycle.ownerOf(message.producer);
    if (!owner) return reply({ message: "connection closed: the owner is no longer connected to this server" });
    try {
      await owner.connection.request(message.method, message.params, RELAY_TIMEOUT_MS);
      reply();
    } catch (error) {
      const { code, message: said, data } = error as { code?: unknown; message?: unknown; data?: unknown };
      reply({ code, message: typeof said === "string" ? said : String(error), data });
    }
  }

  /** Sends a control to the server whose connection owns the producer; its answer (or refusal) comes back like a local owner's. */
  async requestControl(server: number, producer: number, method: string, params: Record<string, unknown>): Promise<void> {
    await this.#request(server, (id) => ({ t: "control", to: server, from: this.serverId, id, producer, method, params }));
  }

  /** Accepts a proposal through the server its runner is attached to; that server's refusal is this caller's error. */
  async acceptElsewhere(server: number, project: ProjectRef, target: ProducerTarget, options: ForwardedAccept): Promise<AcceptResult> {
    try {
      return (await this.#request(server, (id) => ({ t: "accept", to: server, from: this.serverId, id, project, target, options }))) as AcceptResult;
    } catch (error) {
      const { message, data } = error as { message: string; data?: { name?: ErrorName; details?: Record<string, unknown> } };
      if (data?.name) throw new SpoolError(data.name, message, data.details ?? {});
      throw new SpoolError("NO_RUNNER", `the server the runner is attached to (server ${server}) did not take the proposal: ${message}`, {});
    }
  }

  async #applyAccept(message: Extract<BusMessage, { t: "accept" }>): Promise<void> {
    try {
      const result = await this.lifecycle.acceptForwarded(message.project, message.target, message.options as ForwardedAccept);
      this.deps.bus.publish({ t: "reply", to: message.from, id: message.id, result });
    } catch (error) {
      const known = error instanceof SpoolError;
      this.deps.bus.publish({
        t: "reply",
        to: message.from,
        id: message.id,
        error: {
          message: error instanceof Error ? error.message : String(error),
          ...(known ? { data: { name: error.errorName, details: error.details } } : {}),
        },
      });
    }
  }

  #request(server: number, message: (id: number) => BusMessage): Promise<unknown> {
    if (this.#pending.size >= MAX_PENDING_CONTROLS) {
      return Promise.reject(new SpoolError("LIMIT_EXCEEDED", `${MAX_PENDING_CONTROLS} requests are waiting for other servers; try again`, {}));
    }
    const id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`timeout: server ${server} did not answer within ${RELAY_TIMEOUT_MS + 5_000} ms`));
      }, RELAY_TIMEOUT_MS + 5_000);
      timer.unref();
      this.#pending.set(id, { server, resolve, reject, timer });
      this.deps.bus.publish(message(id));
    });
  }

  /** `host:port` of a server sharing the database, from its row (its machine and the port it serves on); cached, a row does not change once listening. */
  async serverLabel(server: number): Promise<string> {
    const known = this.#labels.get(server);
    if (known) return known;
    const [row] = await this.deps.repos.cluster.listServers([server]);
    let port = "";
    try {
      port = row?.url ? new URL(row.url).port : "";
    } catch {
      port = "";
    }
    const label = row ? `${row.host}${port ? `:${port}` : ""}` : `server ${server}`;
    if (port) this.#labels.set(server, label);
    return label;
  }

  async alive(server: number): Promise<boolean> {
    return (await this.deps.bus.alive()).includes(server);
  }

  /** The living server other than this one that the runner (null: the project's default) is attached to. */
  async runnerServer(projectId: number, name: string | null): Promise<number | null> {
    if (!this.shared) return null;
    const found = await this.deps.repos.cluster.findRunner(projectId, name, await this.deps.bus.alive());
    return found && found.server_id !== this.serverId ? found.server_id : null;
  }

  /** The runners of the project attached to the other living servers, as their rows say (runner_locations, runner_names). */
  async runnersElsewhere(projectId: number): Promise<RunnerFacts[]> {
    if (!this.shared) return [];
    const alive = new Set(await this.deps.bus.alive());
    const rows = (await this.deps.repos.cluster.listRunnerLocations(projectId)).filter((r) => r.server_id !== this.serverId && alive.has(r.server_id));
    if (rows.length === 0) return [];
    const drained = new Set((await this.deps.repos.runnerNames.listRunnerNames(projectId)).filter((n) => n.draining).map((n) => n.name));
    return rows.flatMap((row) => factsFromLocation(row, drained.has(row.name)) ?? []);
  }

  queued(projectId: number, pool: string): void {
    if (this.shared) this.deps.bus.publish({ t: "queued", project: projectId, pool });
  }

  drainElsewhere(projectId: number, name: string, draining: boolean): void {
    if (this.shared) this.deps.bus.publish({ t: "drain", project: projectId, name, draining });
  }

  /** The name of the project's default runner when another living server has it attached. */
  async defaultRunnerName(projectId: number): Promise<string | null> {
    if (!this.shared) return null;
    const found = await this.deps.repos.cluster.findRunner(projectId, null, await this.deps.bus.alive());
    return found && found.server_id !== this.serverId ? found.name : null;
  }

  /** The living server (not this one) whose connection owns the producer, or null. */
  async ownerServer(producerId: number): Promise<number | null> {
    if (!this.shared) return null;
    const server = await this.deps.repos.cluster.ownerServer(producerId);
    if (server === null || server === this.serverId) return null;
    return (await this.deps.bus.alive()).includes(server) ? server : null;
  }

  /** Takes a run's lease: null when this server may drive it now, else the server that does. */
  async lease(runId: number): Promise<number | null> {
    if (!this.shared) return null;
    await this.#releasing.get(runId);
    return this.deps.repos.cluster.acquireLease(runId, this.serverId, await this.deps.bus.alive());
  }

  release(runId: number): void {
    if (!this.shared) return;
    const done = this.deps.repos.cluster
      .releaseLease(runId, this.serverId)
      .catch((error: unknown) => this.deps.log.warn(`cluster: could not release run ${runId}: ${String(error)}`))
      .finally(() => {
        if (this.#releasing.get(runId) === done) this.#releasing.delete(runId);
      });
    this.#releasing.set(runId, done);
  }

  /** Asks the server holding a run's lease to take its next steps (what made this server look at it may be news there). */
  kickElsewhere(server: number, runId: number): void {
    this.deps.bus.publish({ t: "kick", to: server, run: runId });
  }

  /** Servers stopped: their producers wait the grace for their owners to come back (here or elsewhere), their runs continue here. */
  async #gone(servers: number[]): Promise<void> {
    this.deps.log.warn(
      `cluster: server${servers.length > 1 ? "s" : ""} ${servers.join(", ")} stopped; taking over what ${servers.length > 1 ? "they" : "it"} held`,
    );
    for (const [id, pending] of this.#pending) {
      if (!servers.includes(pending.server)) continue;
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(new Error(`connection closed: server ${pending.server} stopped`));
    }
    await this.lifecycle.adoptOrphans(`its server stopped`);
    // Proposals shown with a stopped server's runner: this server's in its place, announced again before anyone decides.
    await this.lifecycle.moveProposals();
    const alive = await this.deps.bus.alive();
    for (const runId of await this.deps.repos.cluster.orphanedLeases(alive)) this.#kick?.(runId);
  }

  stop(): void {
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error("connection closed: the server is stopping"));
      this.#pending.delete(id);
    }
  }
}

interface FinishedParams {
  run: string;
  path: string;
  outcome: string;
  exit_code?: number | null;
}

/** How long the owner has to answer a relayed control: as long as a runner has to start a command (input may come while it starts). */
export const RELAY_TIMEOUT_MS = 30_000;
