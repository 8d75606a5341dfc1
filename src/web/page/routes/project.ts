import { factsChanged, type SpoolClient, SpoolRpcError } from "../../../client/spool-client.js";
import type { SpoolNotifications } from "../../../protocol/notifications.js";
import { factsRevision } from "../../../protocol/proposal-facts.js";
import { claimWords, type TransportKind } from "../../../protocol/transports.js";
import { act, may, Offline, type PageContext } from "../context.js";
import { fill, h } from "../dom.js";
import { escapeControl, RUN } from "../format.js";
import type { Project, Proposal, Run, Runner } from "../model.js";
import { routeHash } from "../route.js";
import { budgetCard } from "../views/budget.js";
import { shown } from "../views/common.js";
import { type ProposalActions, proposalCard } from "../views/proposal.js";
import { overview, projectItems, runItems } from "../views/sidebar.js";
import { OtherProjects, pendingNow } from "./queue.js";

/** The page's regions the project view draws. */
export interface ProjectRegions {
  projects: HTMLElement;
  runs: HTMLElement;
  proposals: HTMLElement;
  main: HTMLElement;
}

/** A decided proposal the page keeps a card for. */
interface Decided {
  project: string;
  p: Proposal;
  decision: "accept" | "reject";
  by: string;
  reason: string | null;
  at: number;
}

/** A waiting proposal in the queue: its project, the runners its card offers, and whether it is the joined project's. */
interface QueueItem {
  project: string;
  p: Proposal;
  runners: Runner[];
  joined: boolean;
  /** Whether its decision can be sent now (the connection it goes through is up). */
  connected: boolean;
}

/** Who decided, as a card and a toast say it. */
export const resolverName = (r: SpoolNotifications["run/resolved"]) =>
  r.resolver.kind === "rule"
    ? "an always-allow rule"
    : r.resolver.kind === "abort"
      ? "run/abort"
      : r.resolver.kind === "revoked"
        ? "the revocation of its proposer's credential"
        : decider(r.resolvedBy, r.resolver);

/**
 * A person or client that decided: the principal and the transport the server verified, its client's name as the
 * claim it is (`alice over the Unix socket, client claims "spool-cli"`); a server that does not say the transport: its words.
 */
function decider(resolvedBy: string, resolver: { transport?: TransportKind | undefined; client: string | null }): string {
  if (!resolver.transport) return resolvedBy;
  const at = resolvedBy.indexOf(" via ");
  return claimWords(at < 0 ? resolvedBy : resolvedBy.slice(0, at), resolver.transport, resolver.client);
}

/**
 * The project (#/project): the server's projects and this one's runs in the sidebar, the queue of proposals waiting for
 * a decision across every project the principal sees (this one's on the page's connection, the others' watched by
 * OtherProjects), and its overview with the runners when no run is chosen. Bursts of notices are read back once.
 */
export class ProjectView {
  readonly #page: PageContext;
  readonly #el: ProjectRegions;
  projects: Project[] = [];
  #runs = new Map<string, Run>();
  readonly proposals = new Map<string, Proposal>();
  /** Proposals decided while the page was open, by project, run and path: their cards say what was decided and by whom. */
  readonly #decided = new Map<string, Decided>();
  /** The other projects' waiting proposals. */
  readonly others: OtherProjects;
  #runners: Runner[] = [];
  /**
   * Cards already shown are kept (with what was typed in them, and under a finger about to click them): one is drawn
   * again only when what it shows changed, its facts revision or the runners it offers.
   */
  #cards = new Map<string, { card: HTMLElement; drawn: string; connected: boolean }>();
  /** Why a card was drawn again with new facts (an approve refused: FACTS_CHANGED), by card; said on the card until decided. */
  readonly #changed = new Map<string, string>();
  #runnersTimer: ReturnType<typeof setTimeout> | null = null;
  #projectsTimer = 0;
  #runsTimer = 0;
  #projectsToo = false;

  /**
   * `connect`: a new connection of the page's own (one per other project watched); `notify`: a new proposal of another
   * project, a run of another project paused at its budget.
   */
  constructor(
    page: PageContext,
    regions: ProjectRegions,
    connect: () => Promise<SpoolClient>,
    notify: { proposal: (project: string, p: Proposal) => void; paused: (project: string, run: string, reached: NonNullable<Run["paused"]>) => void },
  ) {
    this.#page = page;
    this.#el = regions;
    this.others = new OtherProjects(
      {
        changed: () => this.renderProposals(),
        proposal: notify.proposal,
        paused: notify.paused,
        resolved: (project, p, r, here) => {
          if (here) return;
          this.#page.toast(`${r.decision === "accept" ? "Accepted" : "Rejected"} by ${escapeControl(resolverName(r))}: ${project} ${r.run} ${r.path}`);
          this.decided(project, p, r.decision, resolverName(r), r.reason);
        },
      },
      connect,
    );
  }

  /** The project's runs, by alias. */
  get runs(): Map<string, Run> {
    return this.#runs;
  }

  // ── loading ─────────────────────────────────────────────────────────────

  async loadProjects(): Promise<void> {
    const rpc = this.#page.rpc;
    if (!rpc) return;
    this.projects = (await rpc.call("project/list", {})).projects;
    this.renderProjects();
    this.others.sync(this.projects, this.#page.route.project);
  }

  async loadRuns(rpc: SpoolClient, view: number): Promise<void> {
    const { runs } = await rpc.call("run/list", { limit: 500 });
    if (view !== this.#page.view) return;
    this.#runs = new Map(runs.map((r) => [r.alias, r]));
    this.renderRuns();
    // Its runs paused at their budget are in the queue.
    this.renderProposals();
  }

  async loadRunners(rpc: SpoolClient): Promise<void> {
    this.#runners = (await rpc.call("runner/list", {})).runners;
    // Cards made before the runners were known (or when others were attached) offer them now.
    this.renderProposals();
  }

  /** Reads the runners again soon (one read for a burst of notices), and redraws the overview that lists them. */
  scheduleRunners(): void {
    if (this.#runnersTimer !== null) return;
    this.#runnersTimer = setTimeout(() => {
      this.#runnersTimer = null;
      const rpc = this.#page.rpc;
      if (!rpc) return;
      void this.loadRunners(rpc)
        .then(() => {
          const route = this.#page.route;
          if (route.run === null && route.project !== null) this.renderOverview();
        })
        .catch(() => {});
    }, 150);
  }

  /** Reads the project list again soon (one read for a burst of notices): its counts changed. */
  scheduleProjects(): void {
    clearTimeout(this.#projectsTimer);
    this.#projectsTimer = window.setTimeout(() => void this.loadProjects().catch(() => {}), 150);
  }

  /** Reads the runs again soon (one read for a burst of notices); `projects` also the project list, whose run counts changed. */
  scheduleRunsReload(projects = false): void {
    clearTimeout(this.#runsTimer);
    this.#projectsToo ||= projects;
    this.#runsTimer = window.setTimeout(() => {
      const rpc = this.#page.rpc;
      if (!rpc) return;
      void this.loadRuns(rpc, this.#page.view).catch(() => {});
      if (this.#projectsToo) void this.loadProjects().catch(() => {});
      this.#projectsToo = false;
    }, 100);
  }

  /** Another project is chosen: its runs and proposals are not known yet. */
  clear(): void {
    this.#runs.clear();
    this.proposals.clear();
  }

  /**
   * A proposal shown here was decided (by this page or anyone): its card stays, saying what was decided and by whom,
   * until dismissed (the ten latest are kept). `p`: the proposal, or its run and path in the joined project.
   */
  decided(project: string, p: Proposal | { run: string; path: string }, decision: "accept" | "reject", by: string, reason: string | null): void {
    const own = `${p.run}\u0000${p.path}`;
    const key = `${project}\u0000${own}`;
    const found = "producer" in p ? p : ((project === this.#page.route.project ? this.proposals.get(own) : undefined) ?? this.#decided.get(key)?.p);
    if (!found) return;
    if (project === this.#page.route.project) this.proposals.delete(own);
    this.#decided.delete(key);
    this.#decided.set(key, { project, p: found, decision, by, reason, at: Date.now() });
    while (this.#decided.size > 10) this.#decided.delete(this.#decided.keys().next().value!);
  }

  /** How many of a run's proposals wait for a decision, as far as the page knows. */
  pendingOf(run: string): number {
    let n = 0;
    for (const p of this.proposals.values()) if (p.run === run) n++;
    return n;
  }

  // ── deciding ────────────────────────────────────────────────────────────

  /** Decides a card's proposal: on the page's connection for the joined project, on the watcher's for another. */
  #resolve(project: string, p: Proposal, decision: "accept" | "reject", button: HTMLButtonElement, runner: string, reason: string): Promise<void> {
    const page = this.#page;
    const joined = project === page.route.project;
    return act(page, button, decision === "accept" ? "Approve" : "Reject", async () => {
      // An approval names the facts revision this card shows: if they changed since, the server refuses it and nothing runs.
      const shown = decision === "accept" ? { facts: factsRevision(p.producer) } : {};
      const params = { run: p.run, path: p.path, decision, ...(runner ? { runner } : {}), ...(reason ? { reason } : {}), ...shown };
      try {
        if (joined) {
          // Offline (the button was drawn off, but a tap may come between the drop and the redraw): said, never thrown.
          if (!page.connected || !page.rpc) throw new Offline();
          await page.rpc.call("run/resolve", params);
        } else await this.others.resolve(project, params);
      } catch (error) {
        // Someone decided first: the page learns how from run/resolved; the card goes.
        if (error instanceof SpoolRpcError && error.errorCode === "CONFLICT") {
          if (joined) this.proposals.delete(`${p.run}\u0000${p.path}`);
          this.renderProposals();
          page.toast(`Already decided elsewhere: ${p.path}`);
          return;
        }
        if (factsChanged(error)) return this.#factsChanged(project, p, joined, error.message);
        throw error;
      }
      this.decided(project, p, decision, `${page.principal.name} (this page)`, reason || null);
      this.renderProposals();
      // Approving is wanting to watch it: show its output, unless another run (or another project's queue) is in view.
      if (decision === "accept" && joined && (page.route.run === null || p.run === page.route.run)) page.go({ run: p.run, producer: p.path });
    });
  }

  /**
   * An approval refused because the proposal's facts changed since its card was drawn (its runner's server stopped and
   * another server's runner takes it): nothing ran. The card is drawn again with the facts as they are now, saying
   * why, and the person decides again.
   */
  async #factsChanged(project: string, p: Proposal, joined: boolean, why: string): Promise<void> {
    const key = `${project}\u0000${p.run}\u0000${p.path}`;
    const rpc = this.#page.rpc;
    const now = joined ? (rpc ? await pendingNow(rpc, p) : p) : await this.others.reread(project, p);
    if (joined && now) this.proposals.set(`${p.run}\u0000${p.path}`, now);
    else if (joined) this.proposals.delete(`${p.run}\u0000${p.path}`);
    this.#changed.set(key, why);
    this.#cards.delete(key);
    this.renderProposals();
    this.#page.toast(`Not approved, nothing ran: the facts changed. Decide again on the facts now shown: ${p.path}`, "error");
  }

  // ── rendering ───────────────────────────────────────────────────────────

  renderProjects(): void {
    fill(this.#el.projects, ...projectItems(this.projects, this.#page.route.project));
  }

  renderRuns(): void {
    const pending = new Map<string, number>();
    for (const p of this.proposals.values()) pending.set(p.run, (pending.get(p.run) ?? 0) + 1);
    fill(this.#el.runs, ...runItems(this.#runs.values(), pending, this.#page.route));
  }

  /**
   * The queue: on a project's page, every waiting proposal of every project in view, those with a deadline first, the
   * soonest to expire first, then the others oldest first; then every run paused at its budget, the longest paused
   * first, its card raising the budget or stopping the run. On a run's page only the project's, the run's own first, and
   * every other run's card says whose it is (a person approving "the first card" there approves one of this run's);
   * the other projects' are counted, with a link back to the whole queue (their cards would push the run out of view).
   */
  renderProposals(): void {
    const here = this.#page.route.run;
    const current = this.#page.route.project ?? "";
    const elsewhere = this.others.queued().map((q) => ({ ...q, joined: false }));
    const connected = this.#page.connected;
    // Runs paused at their budget wait for a person too: the joined project's (but the run shown, whose header has
    // its card), and on a project's page the other projects'.
    const pausedHere = [...this.#runs.values()]
      .filter((r) => r.status === RUN.paused && r.paused && r.alias !== here)
      .map((r) => ({ project: current, run: { alias: r.alias, paused: r.paused!, updatedAt: r.updatedAt }, joined: true, connected }));
    const pausedElsewhere = this.others.pausedRuns().map((q) => ({ ...q, joined: false }));
    const pauses = [...pausedHere, ...(here === null ? pausedElsewhere : [])].sort((a, b) => (a.run.updatedAt ?? 0) - (b.run.updatedAt ?? 0));
    const items: QueueItem[] = [
      ...[...this.proposals.values()].map((p) => ({ project: current, p, runners: this.#runners, joined: true, connected })),
      ...(here === null ? elsewhere : []),
    ];
    const away = elsewhere.length + pausedElsewhere.length;
    const more =
      here !== null && away > 0
        ? h(
            "p",
            { class: "queue-more" },
            h("a", { href: routeHash({ project: current, run: null, producer: null }) }, `${away} more waiting in other projects`),
          )
        : null;
    // The project (or run) the page shows first: a project's link opens on its own cards, then the other projects'; a
    // page that picked its project itself (the link named none) keeps every card in the deadlines' order.
    const mineFirst = (q: QueueItem) => Number(q.joined && (here === null ? !this.#page.projectPicked : q.p.run === here));
    const list = items.sort((a, b) => mineFirst(b) - mineFirst(a) || urgency(a.p, b.p));
    const cards = new Map<string, { card: HTMLElement; drawn: string; connected: boolean }>();
    for (const q of list) {
      const key = `${q.project}\u0000${q.p.run}\u0000${q.p.path}`;
      // A principal whose role may not decide (viewer, agent) sees the card without Approve and Reject.
      const actions = may(this.#page, "person")
        ? { resolve: (...args: Parameters<ProposalActions["resolve"]>) => void this.#resolve(q.project, ...args) }
        : null;
      const drawn = drawnFrom(q.p, q.runners);
      const kept = this.#cards.get(key);
      const card = kept?.drawn === drawn ? kept.card : proposalCard(q.p, q.project, q.runners, actions, this.#changed.get(key));
      markOtherRun(card, here !== null && (!q.joined || q.p.run !== here));
      // Another project's card: its project leads its head, and it is marked so (its run is not in the sidebar).
      card.classList.toggle("other-project", !q.joined);
      decidable(card, q.connected);
      cards.set(key, { card, drawn, connected: q.connected });
    }
    for (const q of pauses) {
      const key = `${q.project}\u0000budget\u0000${q.run.alias}`;
      const drawn = JSON.stringify(q.run.paused);
      const kept = this.#cards.get(key);
      const rpc = q.joined ? () => (this.#page.connected ? this.#page.rpc : null) : () => this.others.clientOf(q.project);
      const card = kept?.drawn === drawn ? kept.card : budgetCard(this.#page, q.run, rpc, q.project);
      card.classList.toggle("other-project", !q.joined);
      decidable(card, q.connected);
      cards.set(key, { card, drawn, connected: q.connected });
    }
    this.#cards = cards;
    for (const key of this.#changed.keys()) if (!cards.has(key)) this.#changed.delete(key);
    const done = [...this.#decided.entries()].reverse().map(([key, d]) =>
      decidedCard(d, () => {
        this.#decided.delete(key);
        this.renderProposals();
      }),
    );
    const total = list.length + pauses.length;
    if (total === 0) {
      fill(this.#el.proposals, more, ...(done.length > 0 ? [h("h2", null, "Decided"), h("div", { class: "cards" }, ...done)] : []));
      return;
    }
    const own = here === null ? total : list.filter((q) => q.joined && q.p.run === here).length;
    const projects = new Set([...list.map((q) => q.project), ...pauses.map((q) => q.project)]).size;
    const across = projects > 1 ? `, in ${projects} projects` : "";
    const heading =
      here === null || own === total
        ? `Waiting for a decision (${total}${across})`
        : `Waiting for a decision: ${own} in this run, ${total - own} in other runs${across}`;
    fill(
      this.#el.proposals,
      h("h2", null, heading),
      h("div", { class: "cards" }, ...[...cards.values()].map((c) => c.card)),
      more,
      ...(done.length > 0 ? [h("h2", null, "Decided"), h("div", { class: "cards" }, ...done)] : []),
    );
  }

  /** The joined project's cards follow the page's connection: Approve and Reject off while it is down, on once it is back. */
  markDecidable(): void {
    const current = this.#page.route.project ?? "";
    const connected = this.#page.connected;
    for (const [key, kept] of this.#cards)
      if (key.startsWith(`${current}\u0000`) && !kept.card.classList.contains("other-project")) decidable(kept.card, connected);
  }

  /** A link to a waiting proposal (a notification's): its card is brought into view and marked. */
  focus(run: string | null, path: string | null): void {
    const card = run && path ? this.#cards.get(`${this.#page.route.project ?? ""}\u0000${run}\u0000${path}`)?.card : undefined;
    if (!card) return;
    for (const other of this.#cards.values()) other.card.classList.toggle("focused", other.card === card);
    card.scrollIntoView({ block: "start" });
  }

  renderOverview(): void {
    const name = this.#page.route.project ?? "";
    fill(
      this.#el.main,
      overview(
        this.projects.find((p) => p.name === name),
        name,
        this.#runs.size,
        this.#runners,
      ),
    );
  }
}

/** What a proposal's card shows that can change while it waits: its facts revision and the runners it offers. */
function drawnFrom(p: Proposal, runners: readonly Runner[]): string {
  const offered = runners.filter((r) => r.state === "claiming" || r.default || r.embedded);
  return JSON.stringify([factsRevision(p.producer), offered.map((r) => [r.name, r.backend, r.state, r.default, r.embedded])]);
}

/** A decided proposal's card: its command, what was decided, by whom and why, and a way to put it away. */
function decidedCard(d: Decided, dismiss: () => void): HTMLElement {
  const word = d.decision === "accept" ? "Approved" : "Rejected";
  return h(
    "article",
    { class: `card decided decided-${d.decision}`, "data-project": d.project, "data-path": d.p.path, "data-run": d.p.run, "data-decision": d.decision },
    h("pre", { class: "command" }, "$ ", shown(d.p.producer.command)),
    h(
      "p",
      { class: "verdict" },
      h("strong", null, word),
      ` by ${escapeControl(d.by)}`,
      d.reason ? `: ${escapeControl(d.reason)}` : "",
      " ",
      h("button", { type: "button", class: "quiet", onclick: dismiss }, "Dismiss"),
    ),
  );
}

/**
 * The queue's order: a proposal with a deadline before one without, the sooner deadline first (what the deadline will
 * reject first is what a person must see first); then the older first.
 */
function urgency(a: Proposal, b: Proposal): number {
  const ends = (p: Proposal) => p.expiresAt ?? Number.POSITIVE_INFINITY;
  return (ends(a) === ends(b) ? 0 : ends(a) < ends(b) ? -1 : 1) || a.createdAt - b.createdAt;
}

/**
 * Whether a card's decision can be sent now: while its connection is down, Approve and Reject are off and the card
 * says so (a tap then would be lost, or sent blind later); they come back when it is up.
 */
function decidable(card: HTMLElement, connected: boolean): void {
  card.classList.toggle("offline", !connected);
  for (const button of card.querySelectorAll<HTMLButtonElement>(".actions button")) {
    if (connected && button.dataset.offline) {
      delete button.dataset.offline;
      button.disabled = false;
      button.title = "";
    } else if (!connected) {
      button.dataset.offline = "1";
      button.disabled = true;
      button.title = "not connected to the server: the page reconnects by itself";
    }
  }
  const note = card.querySelector<HTMLElement>(".offline-note");
  if (note) note.hidden = connected;
}

/** Marks a proposal's card as another run's (on a run's page), or not: a class and a visible note in its head. */
function markOtherRun(card: HTMLElement, other: boolean): void {
  card.classList.toggle("other-run", other);
  const note = card.querySelector<HTMLElement>(".other-run-note");
  if (note) note.hidden = !other;
}
