import type { SpoolClient } from "../../../client/spool-client.js";
import type { SpoolNotifications } from "../../../protocol/notifications.js";
import { ENTRY, RUN } from "../format.js";
import type { Project, Proposal, Run, Runner } from "../model.js";
import type { PausedRun } from "../views/budget.js";

const CLIENT = { name: "spool-web", version: "1" };

/**
 * At most this many other projects are watched at once, one WebSocket each: those with proposals waiting or runs
 * paused at their budget first, then the most recently changed. The others' cards join the queue when the project
 * list next shows them waiting.
 */
export const WATCHED_PROJECTS = 12;

/** A proposal of another project, with what its card needs. */
export interface Queued {
  project: string;
  p: Proposal;
  runners: Runner[];
  /** Whether its project's connection is up: a decision can be sent now (else its card waits, its buttons off). */
  connected: boolean;
}

/** A run of another project paused at its budget: it waits for a person as a proposal does. */
export interface QueuedPause {
  project: string;
  run: PausedRun;
  /** Whether its project's connection is up (as Queued's). */
  connected: boolean;
}

/** What the watcher tells the view that shows the queue. */
export interface QueueHost {
  /** The queue changed: draw it again. */
  changed(): void;
  /** A new proposal in a watched project (for the browser notification). */
  proposal(project: string, p: Proposal): void;
  /** A run of a watched project paused at its budget (for the browser notification). */
  paused(project: string, run: string, reached: NonNullable<Run["paused"]>): void;
  /** A watched proposal was decided; `here`: by this page's own call. */
  resolved(project: string, p: Proposal, r: SpoolNotifications["run/resolved"], here: boolean): void;
}

interface Watched {
  /** The project's connection; null while (re)connecting. */
  client: SpoolClient | null;
  /** Joined, its runners read: its cards can be drawn whole. */
  ready: boolean;
  connectionId: string;
  proposals: Map<string, Proposal>;
  /** What a reconnection's join receives, put in place of `proposals` once it is joined (till then the old cards stay). */
  incoming: Map<string, Proposal> | null;
  /** Its runs paused at their budget, by alias (read again on each join). */
  paused: Map<string, PausedRun>;
  runners: Runner[];
  /** How long before the next attempt after a drop. */
  retryMs: number;
  retry: ReturnType<typeof setTimeout> | null;
}

/**
 * The queue beyond the joined project: a connection joined to each other project the principal may see (project/list
 * lists only its scope's), which the server sends every waiting proposal on as it joins and every new one and every
 * decision after (run/proposal, run/resolved); its runs paused at their budget are read as it joins (run/list) and
 * followed by their state (run/state "budget reached", and any other status after). A decision on such a card, a
 * raise or a stop, goes through that project's connection. A dropped connection keeps its cards in the queue, their
 * buttons off, and connects again by itself; once joined again the proposals the server sends, and the runs paused
 * then, replace them.
 */
export class OtherProjects {
  readonly #host: QueueHost;
  readonly #connect: () => Promise<SpoolClient>;
  readonly #watched = new Map<string, Watched>();

  constructor(host: QueueHost, connect: () => Promise<SpoolClient>) {
    this.#host = host;
    this.#connect = connect;
  }

  /** Watches the projects of the list but `current` (the joined one, whose proposals come on the page's own connection). */
  sync(projects: readonly Project[], current: string | null): void {
    const wanted = projects
      .filter((p) => p.name !== current)
      .sort((a, b) => b.waiting + b.paused - (a.waiting + a.paused) || (b.updatedAt ?? 0) - (a.updatedAt ?? 0))
      .slice(0, WATCHED_PROJECTS)
      .map((p) => p.name);
    let dropped = false;
    for (const name of [...this.#watched.keys()]) {
      if (wanted.includes(name)) continue;
      dropped = true;
      this.#drop(name);
    }
    for (const name of wanted) if (!this.#watched.has(name)) void this.#open(name);
    if (dropped) this.#host.changed();
  }

  /** Every waiting proposal of the watched projects. */
  queued(): Queued[] {
    const all: Queued[] = [];
    for (const [project, w] of this.#watched) {
      if (w.ready) for (const p of w.proposals.values()) all.push({ project, p, runners: w.runners, connected: w.client !== null && w.incoming === null });
    }
    return all;
  }

  /** Every run of the watched projects paused at its budget. */
  pausedRuns(): QueuedPause[] {
    const all: QueuedPause[] = [];
    for (const [project, w] of this.#watched) {
      if (w.ready) for (const run of w.paused.values()) all.push({ project, run, connected: w.client !== null && w.incoming === null });
    }
    return all;
  }

  /** The connection a watched project's cards act on; null while there is none (or it is joining again). */
  clientOf(project: string): SpoolClient | null {
    const w = this.#watched.get(project);
    return w?.client && w.incoming === null ? w.client : null;
  }

  /** Decides a watched project's proposal through that project's connection (errors as run/resolve's). */
  async resolve(
    project: string,
    params: { run: string; path: string; decision: "accept" | "reject"; runner?: string; reason?: string; facts?: number },
  ): Promise<void> {
    const w = this.#watched.get(project);
    if (!w?.client || w.incoming !== null)
      throw new Error(`not connected to project ${project} (it reconnects by itself); nothing was sent — try again in a moment`);
    const client = w.client;
    await client.call("run/resolve", params);
    this.#watched.get(project)?.proposals.delete(`${params.run}\u0000${params.path}`);
  }

  /** A watched proposal read again through its project's connection (its facts changed): kept if it still waits, else dropped. */
  async reread(project: string, p: Proposal): Promise<Proposal | null> {
    const w = this.#watched.get(project);
    if (!w?.client) return null;
    const now = await pendingNow(w.client, p);
    if (now) w.proposals.set(`${p.run}\u0000${p.path}`, now);
    else w.proposals.delete(`${p.run}\u0000${p.path}`);
    return now;
  }

  /** The page signs out or stops: every connection closes. */
  close(): void {
    for (const name of [...this.#watched.keys()]) this.#drop(name);
  }

  #drop(name: string): void {
    const w = this.#watched.get(name);
    this.#watched.delete(name);
    if (w?.retry) clearTimeout(w.retry);
    w?.client?.close();
  }

  /** Watches `name` (`w`: again, after a drop, keeping its cards until the new join replaces them). */
  async #open(name: string, again?: Watched): Promise<void> {
    const w: Watched = again ?? {
      client: null,
      ready: false,
      connectionId: "",
      proposals: new Map(),
      incoming: null,
      paused: new Map(),
      runners: [],
      retryMs: 500,
      retry: null,
    };
    w.retry = null;
    w.incoming = w.ready ? new Map() : null;
    this.#watched.set(name, w);
    const mine = () => this.#watched.get(name) === w;
    let client: SpoolClient | null = null;
    try {
      client = await this.#connect();
      if (!mine()) return client.close();
      w.client = client;
      const current = client;
      client.on("run/proposal", (p) => {
        if (!mine() || w.client !== current) return;
        (w.incoming ?? w.proposals).set(`${p.run}\u0000${p.path}`, p);
        if (w.incoming) return;
        this.#host.proposal(name, p);
        this.#host.changed();
      });
      client.on("run/resolved", (r) => {
        const key = `${r.run}\u0000${r.path}`;
        w.incoming?.delete(key);
        const p = w.proposals.get(key);
        if (!mine() || w.client !== current || !p) return;
        w.proposals.delete(key);
        this.#host.resolved(name, p, r, r.resolver.connectionId === w.connectionId);
        this.#host.changed();
      });
      client.on("run/state", (s) => {
        if (!mine() || w.client !== current) return;
        // Paused: which budget and what was used are in the notice. Raised, stopped or ended: its card goes.
        if (s.status === RUN.paused && s.event === "budget reached" && s.budget) {
          w.paused.set(s.run, { alias: s.run, paused: s.budget, updatedAt: Date.now() });
          if (!w.incoming) this.#host.paused(name, s.run, s.budget);
        } else if (s.status === RUN.paused || !w.paused.delete(s.run)) return;
        this.#host.changed();
      });
      client.onClose(() => {
        if (mine() && w.client === current) this.#lost(name, w);
      });
      const joined = await client.initialize(name, { create: false, client: CLIENT });
      w.connectionId = joined.connectionId;
      w.runners = (await client.call("runner/list", {})).runners;
      // The proposals the server sent on this join are the project's waiting ones now.
      if (w.incoming) w.proposals = w.incoming;
      w.incoming = null;
      // Its runs paused now: the cards of those raised or stopped while it was away go.
      const paused = new Map<string, PausedRun>();
      for (const run of (await client.call("run/list", { status: RUN.paused })).runs) if (run.paused) paused.set(run.alias, pausedOf(run, run.paused));
      w.paused = paused;
      w.ready = true;
      w.retryMs = 500;
      if (mine()) this.#host.changed();
    } catch {
      // Not joined (the server is restarting, the project went): a watcher that showed cards tries again by itself;
      // one that never joined is left to the next sync.
      client?.close();
      if (!mine()) return;
      if (w.ready) this.#lost(name, w);
      else this.#watched.delete(name);
    }
  }

  /** A watched project's connection dropped: its cards stay, their buttons off, and it connects again, waiting longer each time. */
  #lost(name: string, w: Watched): void {
    w.client?.close();
    w.client = null;
    w.incoming = null;
    this.#host.changed();
    if (w.retry) return;
    w.retry = setTimeout(() => {
      if (this.#watched.get(name) === w) void this.#open(name, w);
    }, w.retryMs);
    w.retryMs = Math.min(w.retryMs * 2, 5_000);
  }
}

function pausedOf(run: Run, paused: NonNullable<Run["paused"]>): PausedRun {
  return { alias: run.alias, paused, updatedAt: run.updatedAt };
}

/** A proposal as it is now, if it still waits for a decision (its facts, its attributes), read on `rpc`; else null. */
export async function pendingNow(rpc: SpoolClient, p: Proposal): Promise<Proposal | null> {
  const log = await rpc.call("entry/get", { run: p.run, path: p.path });
  return log.status === ENTRY.proposed && log.producer ? { ...p, attributes: log.attributes, producer: log.producer } : null;
}
