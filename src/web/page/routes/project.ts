import { type SpoolClient, SpoolRpcError } from "../../../client/spool-client.js";
import { act, may, type PageContext } from "../context.js";
import { fill, h } from "../dom.js";
import type { Project, Proposal, Run, Runner } from "../model.js";
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
      this.proposals.delete(`${p.run}\u0000${p.path}`);
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
    if (list.length === 0) {
      fill(this.#el.proposals);
      return;
    }
    const own = here === null ? list.length : list.filter(([, p]) => p.run === here).length;
    const heading =
      here === null || own === list.length
        ? `Waiting for a decision (${list.length})`
        : `Waiting for a decision: ${own} in this run, ${list.length - own} in other runs`;
    fill(this.#el.proposals, h("h2", null, heading), h("div", { class: "cards" }, ...cards.values()));
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

/** Marks a proposal's card as another run's (on a run's page), or not: a class and a visible note in its head. */
function markOtherRun(card: HTMLElement, other: boolean): void {
  card.classList.toggle("other-run", other);
  const note = card.querySelector<HTMLElement>(".other-run-note");
  if (note) note.hidden = !other;
}
