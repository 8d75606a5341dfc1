import { type SpoolClient, SpoolRpcError } from "../../../client/spool-client.js";
import { act, may, type PageContext } from "../context.js";
import { fill, h } from "../dom.js";
import { escapeControl } from "../format.js";
import type { Project, Proposal, Run, Runner } from "../model.js";
import { shown } from "../views/common.js";
import { type ProposalActions, proposalCard } from "../views/proposal.js";
import { overview, projectItems, runItems } from "../views/sidebar.js";

/** The page's regions the project view draws. */
export interface ProjectRegions {
  projects: HTMLElement;
  runs: HTMLElement;
  proposals: HTMLElement;
  main: HTMLElement;
}

/**
 * The project (#/project): the server's projects and this one's runs in the sidebar, its proposals waiting for a
 * decision, and its overview with the runners when no run is chosen. Bursts of notices are read back once.
 */
export class ProjectView {
  readonly #page: PageContext;
  readonly #el: ProjectRegions;
  projects: Project[] = [];
  #runs = new Map<string, Run>();
  readonly proposals = new Map<string, Proposal>();
  /** Proposals decided while the page was open, newest first: their cards say what was decided and by whom. */
  readonly #decided = new Map<string, { p: Proposal; decision: "accept" | "reject"; by: string; reason: string | null; at: number }>();
  #runners: Runner[] = [];
  /** Cards already shown are kept (with what was typed in them); only new ones are made. */
  #cards = new Map<string, HTMLElement>();
  #runnersTimer: ReturnType<typeof setTimeout> | null = null;
  #projectsTimer = 0;
  #runsTimer = 0;
  #projectsToo = false;

  constructor(page: PageContext, regions: ProjectRegions) {
    this.#page = page;
    this.#el = regions;
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
  }

  async loadRuns(rpc: SpoolClient, view: number): Promise<void> {
    const { runs } = await rpc.call("run/list", { limit: 500 });
    if (view !== this.#page.view) return;
    this.#runs = new Map(runs.map((r) => [r.alias, r]));
    this.renderRuns();
  }

  async loadRunners(rpc: SpoolClient): Promise<void> {
    this.#runners = (await rpc.call("runner/list", {})).runners;
    // Cards made before the runners were known offer them now.
    this.#cards.clear();
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
    this.#decided.clear();
  }

  /**
   * A proposal shown here was decided (by this page or anyone): its card stays, saying what was decided and by whom,
   * until dismissed (the ten latest are kept).
   */
  decided(key: string, decision: "accept" | "reject", by: string, reason: string | null): void {
    const p = this.proposals.get(key) ?? this.#decided.get(key)?.p;
    if (!p) return;
    this.proposals.delete(key);
    this.#decided.delete(key);
    this.#decided.set(key, { p, decision, by, reason, at: Date.now() });
    while (this.#decided.size > 10) this.#decided.delete(this.#decided.keys().next().value!);
  }

  /** How many of a run's proposals wait for a decision, as far as the page knows. */
  pendingOf(run: string): number {
    let n = 0;
    for (const p of this.proposals.values()) if (p.run === run) n++;
    return n;
  }

  // ── deciding ────────────────────────────────────────────────────────────

  #resolve(p: Proposal, decision: "accept" | "reject", button: HTMLButtonElement, runner: string, reason: string): Promise<void> {
    const page = this.#page;
    return act(page, button, decision === "accept" ? "Approve" : "Reject", async () => {
      try {
        await page.rpc!.call("run/resolve", {
          run: p.run,
          path: p.path,
          decision,
          ...(runner ? { runner } : {}),
          ...(reason ? { reason } : {}),
        });
      } catch (error) {
        // Someone decided first: the page learns how from run/resolved; the card goes.
        if (error instanceof SpoolRpcError && error.errorCode === "CONFLICT") {
          this.proposals.delete(`${p.run}\u0000${p.path}`);
          this.renderProposals();
          page.toast(`Already decided elsewhere: ${p.path}`);
          return;
        }
        throw error;
      }
      this.decided(`${p.run}\u0000${p.path}`, decision, `${page.principal.name} (this page)`, reason || null);
      this.renderProposals();
      // Approving is wanting to watch it: show its output, unless another run is in view.
      if (decision === "accept" && (page.route.run === null || p.run === page.route.run)) page.go({ run: p.run, producer: p.path });
    });
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
   * On a run's page its own proposals come first, and every other run's card says whose it is (a person approving
   * "the first card" there approves one of this run's); on the project's page, oldest first.
   */
  renderProposals(): void {
    const here = this.#page.route.run;
    const list = [...this.proposals.entries()].sort(([, a], [, b]) => Number(b.run === here) - Number(a.run === here) || a.createdAt - b.createdAt);
    const cards = new Map<string, HTMLElement>();
    for (const [key, p] of list) {
      // A principal whose role may not decide (viewer, agent) sees the card without Approve and Reject.
      const actions = may(this.#page, "person") ? { resolve: (...args: Parameters<ProposalActions["resolve"]>) => void this.#resolve(...args) } : null;
      const card = this.#cards.get(key) ?? proposalCard(p, this.#page.route.project, this.#runners, actions);
      markOtherRun(card, here !== null && p.run !== here);
      cards.set(key, card);
    }
    this.#cards = cards;
    const done = [...this.#decided.entries()].reverse().map(([key, d]) =>
      decidedCard(d, () => {
        this.#decided.delete(key);
        this.renderProposals();
      }),
    );
    if (list.length === 0) {
      fill(this.#el.proposals, ...(done.length > 0 ? [h("h2", null, "Decided"), h("div", { class: "cards" }, ...done)] : []));
      return;
    }
    const own = here === null ? list.length : list.filter(([, p]) => p.run === here).length;
    const heading =
      here === null || own === list.length
        ? `Waiting for a decision (${list.length})`
        : `Waiting for a decision: ${own} in this run, ${list.length - own} in other runs`;
    fill(
      this.#el.proposals,
      h("h2", null, heading),
      h("div", { class: "cards" }, ...cards.values()),
      ...(done.length > 0 ? [h("h2", null, "Decided"), h("div", { class: "cards" }, ...done)] : []),
    );
  }

  /** A link to a waiting proposal (a notification's): its card is brought into view and marked. */
  focus(run: string | null, path: string | null): void {
    const card = run && path ? this.#cards.get(`${run}\u0000${path}`) : undefined;
    if (!card) return;
    for (const other of this.#cards.values()) other.classList.toggle("focused", other === card);
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

/** A decided proposal's card: its command, what was decided, by whom and why, and a way to put it away. */
function decidedCard(d: { p: Proposal; decision: "accept" | "reject"; by: string; reason: string | null }, dismiss: () => void): HTMLElement {
  const word = d.decision === "accept" ? "Approved" : "Rejected";
  return h(
    "article",
    { class: `card decided decided-${d.decision}`, "data-path": d.p.path, "data-run": d.p.run, "data-decision": d.decision },
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

/** Marks a proposal's card as another run's (on a run's page), or not: a class and a visible note in its head. */
function markOtherRun(card: HTMLElement, other: boolean): void {
  card.classList.toggle("other-run", other);
  const note = card.querySelector<HTMLElement>(".other-run-note");
  if (note) note.hidden = !other;
}
