import { connectBrowserWebSocket } from "../../client/browser-transport.js";
import { SpoolClient, SpoolRpcError } from "../../client/spool-client.js";
import type { ResultOf } from "../../protocol/methods/index.js";
import type { SpoolNotifications } from "../../protocol/notifications.js";
import { fill, h } from "./dom.js";
import { age, bytes, ENTRY, escapeControl, serverNow, setServerClock, statusClass } from "./format.js";
import { TerminalInput } from "./input.js";
import {
  isOpen,
  isRunning,
  type Message,
  type Producer,
  type Project,
  type Proposal,
  producersOf,
  type Run,
  type Runner,
  runWord,
  type ToolNotice,
} from "./model.js";
import { codeIn, type Route, readRoute, routeHash } from "./route.js";
import { ChannelTerminal, type TerminalMode } from "./terminal.js";
import { since } from "./views/common.js";
import { callWords, messageView } from "./views/conversation.js";
import { channelHead, channelSize, type InputState, producerFacts, producerTable } from "./views/producer.js";
import { proposalCard } from "./views/proposal.js";
import { overview, projectItems, runItems } from "./views/sidebar.js";

const CLIENT = { name: "spool-web", version: "1" };

/**
 * The typed client over the page's WebSocket (the browser sends the session cookie with the upgrade; nothing
 * here holds a token). One connection joins one project; the app opens a new one to change project.
 */
const connect = async (url: string) => new SpoolClient(await connectBrowserWebSocket(url));
/** Messages of a run's conversation the page keeps (the oldest are dropped beyond it). */
const MAX_MESSAGES = 2000;
/** Entries of a run listed (logs and their channels). */
const MAX_ENTRIES = 3000;
/** While a command of the run in view runs, its entries (sizes, states) are read again this often. */
const ENTRIES_EVERY_MS = 2_000;

/**
 * The web view: one WebSocket joined to the chosen project (a new one when the project changes), the
 * project's runs and pending proposals in view, the chosen run's conversation and producers, and the
 * chosen producer's channels live in terminals. A dropped connection is opened again and everything
 * reloaded; terminals resume after the last seq they hold.
 */
/** A live terminal that fell behind goes on from this many chunks before the end (a runner sends at most 64 KiB a chunk). */
const JUMP_BACK_CHUNKS = 16;

export class App {
  readonly #root: HTMLElement;
  /** Requests and the project's notifications. */
  #rpc: SpoolClient | null = null;
  /**
   * Output: terminals subscribe on a connection of their own. A connection whose reader is behind gets
   * nothing more made for it until it catches up (SPEC §1), so a page busy drawing a flood of output must
   * not make its clicks wait behind that output.
   */
  #data: SpoolClient | null = null;
  #route: Route = readRoute();
  #projects: Project[] = [];
  #runs = new Map<string, Run>();
  #proposals = new Map<string, Proposal>();
  #runners: Runner[] = [];
  #serverVersion = "";
  /** This page's connection, to tell its own decisions from others'. */
  #connectionId = "";
  #state: "connecting" | "open" | "reconnecting" | "signed-out" = "connecting";
  #retryMs = 500;
  #retryTimer = 0;
  /** Bumped for each connection: a close or an answer from an older one is ignored. */
  #conn = 0;
  /** Bumped whenever what is shown changes (connection, run): late answers for an older view are dropped. */
  #view = 0;

  // The chosen run.
  #run: Run | null = null;
  #usage: ResultOf<"run/get">["usage"] | null = null;
  #messages: Message[] = [];
  #tools = new Map<string, ToolNotice>();
  #live = new Map<number, string>();
  #producers: Producer[] = [];
  #historyTimer = 0;
  #entriesTimer = 0;

  // The chosen producer's terminals, by channel, and their subscriptions.
  #terminals = new Map<number, ChannelTerminal>();
  #subscriptions = new Map<string, ChannelTerminal>();
  #ended = new Map<number, SpoolNotifications["stream/end"]>();
  #detailFor: string | null = null;
  /** The kept abort and cancel buttons, one of each, for the run and producer shown (see #actionButton). */
  #actionButtons = new Map<"abort" | "cancel", { key: string; button: HTMLButtonElement }>();
  /** The shown producer's panes' live / whole toggles, by channel (see #toggleButton). */
  #toggles = new Map<number, HTMLButtonElement>();
  /** What is typed into the chosen producer's terminal, when it has one and runs; its state for the pane's heading. */
  #input: TerminalInput | null = null;
  #inputState: InputState | null = null;

  // Regions of the page.
  readonly #el = {
    status: h("span", { class: "conn" }),
    projects: h("nav", { class: "projects", "aria-label": "Projects" }),
    runs: h("nav", { class: "runs", "aria-label": "Runs" }),
    proposals: h("section", { class: "proposals", "aria-label": "Pending proposals" }),
    main: h("div", { class: "run-view" }),
    toasts: h("div", { class: "toasts", role: "status" }),
  };
  readonly #runEl = {
    header: h("header", { class: "run-header" }),
    conversation: h("div", { class: "conversation" }),
    live: h("div", { class: "live" }),
    prompt: h("form", { class: "prompt" }),
    producers: h("div", { class: "producer-list" }),
    detail: h("div", { class: "producer-detail" }),
  };

  constructor(root: HTMLElement) {
    this.#root = root;
  }

  /** Signs in with the fragment's one-time code when there is one, then connects. */
  async start(): Promise<void> {
    // A sign-in link pasted into a tab already on the page only changes the fragment: start over with it.
    window.addEventListener("hashchange", () => {
      if (codeIn(location.hash)) location.reload();
    });
    const fragment = new URLSearchParams(codeIn(location.hash) ? location.hash.slice(1) : "");
    const code = fragment.get("code");
    if (code) {
      // The code leaves the address bar at once, whatever happens next.
      const wanted = fragment.get("project");
      history.replaceState(null, "", `${location.pathname}${wanted ? routeHash({ project: wanted, run: null, producer: null }) : ""}`);
      this.#route = readRoute();
      this.#pendingRoot = fragment.get("root");
      const response = await fetch("/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }) });
      if (!response.ok) return this.#signedOut(await errorText(response));
    }
    const session = await fetch("/session", { cache: "no-store" });
    if (!session.ok) return this.#signedOut(code ? "" : await errorText(session));
    this.#layout();
    window.addEventListener("hashchange", () => {
      if (!codeIn(location.hash)) this.#navigate(readRoute(), false);
    });
    // Ages in seconds change every second: "0s" must not stand for ten.
    setInterval(() => this.#refreshAges(), 1_000);
    setInterval(() => this.#refreshSizes(), 1_000);
    // Other projects' runs notify only their own connections: their counts are read again now and then.
    setInterval(() => {
      if (document.visibilityState === "visible" && this.#state === "open") void this.#loadProjects().catch(() => {});
    }, 30_000);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.#state === "open") void this.#loadProjects();
    });
    await this.#connect();
  }

  #pendingRoot: string | null = null;

  #signedOut(reason: string): void {
    this.#state = "signed-out";
    this.#closeConnection();
    fill(
      this.#root,
      h(
        "div",
        { class: "signed-out" },
        h("h1", null, "Spool"),
        h("p", { class: "reason" }, ...withCode(reason || "This page is not signed in.")),
        h(
          "p",
          null,
          "On the machine that runs the server, ",
          h("code", null, "spool open"),
          " prints a link that signs this browser in (it works once, for a minute).",
        ),
      ),
    );
  }

  #layout(): void {
    const signOut = h("button", { class: "quiet", type: "button", onclick: () => void this.#signOut() }, "Sign out");
    const body = h(
      "div",
      { class: "shell" },
      h("header", { class: "top" }, h("a", { class: "brand", href: "#/" }, "Spool"), this.#el.status, h("span", { class: "spacer" }), signOut),
      h("aside", { class: "side" }, h("h2", null, "Projects"), this.#el.projects, h("h2", null, "Runs"), this.#el.runs),
      h("main", { class: "main" }, this.#el.proposals, this.#el.main),
      this.#el.toasts,
    );
    fill(this.#root, body);
    this.#root.classList.remove("boot");
    this.#renderStatus();
  }

  async #signOut(): Promise<void> {
    await fetch("/session", { method: "DELETE" });
    this.#signedOut("Signed out.");
  }

  // ── connection ──────────────────────────────────────────────────────────

  async #connect(): Promise<void> {
    clearTimeout(this.#retryTimer);
    const conn = ++this.#conn;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
    const opened = await Promise.allSettled([connect(url), connect(url)]);
    const [rpc, data] = opened.map((o) => (o.status === "fulfilled" ? o.value : null));
    if (!rpc || !data || conn !== this.#conn) {
      rpc?.close();
      data?.close();
      if (conn === this.#conn) void this.#lost(conn);
      return;
    }
    this.#rpc = rpc;
    this.#data = data;
    rpc.onClose(() => this.#lost(conn));
    data.onClose(() => this.#lost(conn));
    this.#listen(rpc, data);
    try {
      await this.#join(rpc, data);
      this.#retryMs = 500;
    } catch (error) {
      if (conn !== this.#conn || rpc.closed) return;
      this.#toast(`Could not load: ${message(error)}`, "error");
    }
  }

  /** After a drop: a page whose session is gone says so; otherwise it connects again, waiting longer each time. */
  async #lost(conn: number): Promise<void> {
    if (conn !== this.#conn || this.#state === "signed-out") return;
    this.#conn++;
    // Both connections go together: the one still open is closed too.
    this.#rpc?.close();
    this.#data?.close();
    this.#rpc = null;
    this.#data = null;
    // Subscriptions die with the connection; the terminals stay, to resume after their last seq.
    this.#subscriptions.clear();
    this.#state = "reconnecting";
    this.#renderStatus();
    for (const terminal of this.#terminals.values()) if (!terminal.paused) terminal.note("[connection lost; reconnecting …]");
    const session = await fetch("/session", { cache: "no-store" }).catch(() => null);
    if (session?.status === 401) return this.#signedOut(await errorText(session));
    if (this.#state !== "reconnecting") return;
    this.#retryTimer = window.setTimeout(() => void this.#connect(), this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, 5_000);
  }

  #closeConnection(): void {
    this.#conn++;
    this.#view++;
    clearTimeout(this.#retryTimer);
    this.#rpc?.close();
    this.#data?.close();
    this.#rpc = null;
    this.#data = null;
  }

  /** Lists the projects, joins the chosen one and loads what is in view. */
  async #join(rpc: SpoolClient, data: SpoolClient): Promise<void> {
    const view = ++this.#view;
    // Ages are told from the server's times: this browser's clock may be off, so the page reads the server's once.
    const sent = Date.now();
    const { time } = await rpc.call("ping", {});
    setServerClock(time, sent, Date.now());
    const { projects } = await rpc.call("project/list", {});
    this.#projects = projects;
    if (this.#pendingRoot) {
      const byRoot = projects.find((p) => p.root === this.#pendingRoot);
      this.#pendingRoot = null;
      if (byRoot) this.#route = { project: byRoot.name, run: null, producer: null };
    }
    let name = this.#route.project;
    if (!name || !projects.some((p) => p.name === name)) {
      const busiest = [...projects].sort((a, b) => b.waiting - a.waiting || b.open - a.open || (b.updatedAt ?? 0) - (a.updatedAt ?? 0))[0];
      if (name && this.#route.project) this.#toast(`No project "${name}" on this server`, "error");
      name = busiest?.name ?? null;
      this.#route = { project: name, run: null, producer: null };
      history.replaceState(null, "", routeHash(this.#route));
    }
    this.#renderProjects();
    if (!name) {
      this.#state = "open";
      this.#renderStatus();
      fill(
        this.#el.main,
        h("div", { class: "empty" }, h("p", null, "This server has no projects yet."), h("p", null, "Start one with ", h("code", null, "spool act"), ".")),
      );
      return;
    }
    this.#proposals.clear();
    const joined = await rpc.initialize(name, { create: false, client: CLIENT });
    await data.initialize(name, { create: false, client: CLIENT });
    this.#serverVersion = joined.server.version;
    this.#connectionId = joined.connectionId;
    this.#state = "open";
    this.#renderStatus();
    await Promise.all([this.#loadRuns(rpc, view), this.#loadRunners(rpc)]);
    this.#renderProposals();
    // Back after a drop on the same run: keep what is shown and catch up.
    await this.#openRun(view, this.#run !== null && this.#run.alias === this.#route.run);
  }

  #listen(rpc: SpoolClient, data: SpoolClient): void {
    rpc.on("run/proposal", (p) => {
      this.#proposals.set(`${p.run}\u0000${p.path}`, p);
      if (!this.#runs.has(p.run)) this.#scheduleRunsReload();
      this.#renderProposals();
      this.#renderRuns();
      this.#scheduleProjects();
      if (p.run === this.#run?.alias) {
        this.#renderRunHeader();
        this.#scheduleEntries();
      }
    });
    rpc.on("run/resolved", (r) => {
      const key = `${r.run}\u0000${r.path}`;
      if (this.#proposals.delete(key) && r.resolver.connectionId !== this.#connectionId) {
        const who = r.resolver.kind === "rule" ? "an always-allow rule" : r.resolver.kind === "abort" ? "run/abort" : r.resolvedBy;
        this.#toast(`${r.decision === "accept" ? "Accepted" : "Rejected"} by ${escapeControl(who)}: ${r.run} ${r.path}`);
      }
      this.#renderProposals();
      this.#renderRuns();
      this.#scheduleProjects();
      if (r.run === this.#run?.alias) {
        this.#renderRunHeader();
        this.#scheduleEntries();
      }
    });
    rpc.on("run/state", (s) => {
      const run = this.#runs.get(s.run);
      // A run made by any client of the project (run/create) is announced as "created": it joins the list.
      if (!run || s.event === "created") return this.#scheduleRunsReload(s.event === "created");
      // The project's badges (open runs, runs waiting on a proposal) follow its runs' statuses.
      if (run.status !== s.status) this.#scheduleProjects();
      run.status = s.status;
      run.turn = s.turn;
      run.updatedAt = serverNow();
      this.#renderRuns();
      if (s.run === this.#run?.alias) {
        this.#renderRunHeader();
        this.#renderPrompt();
        this.#scheduleHistory();
      }
    });
    rpc.on("run/progress", (p) => {
      if (p.run !== this.#run?.alias) return;
      this.#live.set(p.turn, (this.#live.get(p.turn) ?? "") + p.delta);
      this.#renderLive();
    });
    rpc.on("run/tool", (t) => {
      if (t.run !== this.#run?.alias) return;
      this.#tools.set(t.id, t);
      this.#scheduleHistory();
    });
    for (const method of ["stream/started", "stream/finished", "stream/cancelled"] as const) {
      rpc.on(method, (n) => {
        if (n.run === this.#run?.alias) this.#scheduleEntries();
        // What each runner is running changed: the overview's "N running" follows it.
        this.#scheduleRunners();
      });
    }
    data.on("stream/data", (d) => this.#subscriptions.get(d.subscription)?.push(d.seq, d.chunk));
    data.on("stream/end", (e) => {
      const terminal = this.#subscriptions.get(e.subscription);
      if (!terminal) return;
      this.#subscriptions.delete(e.subscription);
      this.#ended.set(terminal.info.channel, e);
      this.#renderDetailMeta();
    });
    data.on("stream/lagged", (l) => {
      const terminal = this.#subscriptions.get(l.subscription);
      if (!terminal) return;
      this.#subscriptions.delete(l.subscription);
      // Live: replaying the backlog would keep it behind; it goes on from the last few chunks instead. Whole: from where it was.
      void (terminal.mode === "live" ? this.#jumpToEnd(terminal) : this.#subscribe(terminal));
    });
  }

  // ── loading ─────────────────────────────────────────────────────────────

  async #loadProjects(): Promise<void> {
    const rpc = this.#rpc;
    if (!rpc) return;
    this.#projects = (await rpc.call("project/list", {})).projects;
    this.#renderProjects();
  }

  async #loadRuns(rpc: SpoolClient, view: number): Promise<void> {
    const { runs } = await rpc.call("run/list", { limit: 500 });
    if (view !== this.#view) return;
    this.#runs = new Map(runs.map((r) => [r.alias, r]));
    this.#renderRuns();
  }

  #runnersTimer: ReturnType<typeof setTimeout> | null = null;

  /** Reads the runners again soon (one read for a burst of notices), and redraws the overview that lists them. */
  #scheduleRunners(): void {
    if (this.#runnersTimer !== null) return;
    this.#runnersTimer = setTimeout(() => {
      this.#runnersTimer = null;
      const rpc = this.#rpc;
      if (!rpc) return;
      void this.#loadRunners(rpc)
        .then(() => {
          if (this.#route.run === null && this.#route.project !== null) this.#renderOverview();
        })
        .catch(() => {});
    }, 150);
  }

  async #loadRunners(rpc: SpoolClient): Promise<void> {
    this.#runners = (await rpc.call("runner/list", {})).runners;
    // Cards made before the runners were known offer them now.
    this.#cards.clear();
    this.#renderProposals();
  }

  #projectsTimer = 0;
  /** Reads the project list again soon (one read for a burst of notices): its counts changed. */
  #scheduleProjects(): void {
    clearTimeout(this.#projectsTimer);
    this.#projectsTimer = window.setTimeout(() => void this.#loadProjects().catch(() => {}), 150);
  }

  #runsTimer = 0;
  #projectsToo = false;
  /** Reads the runs again soon (one read for a burst of notices); `projects` also the project list, whose run counts changed. */
  #scheduleRunsReload(projects = false): void {
    clearTimeout(this.#runsTimer);
    this.#projectsToo ||= projects;
    this.#runsTimer = window.setTimeout(() => {
      if (!this.#rpc) return;
      void this.#loadRuns(this.#rpc, this.#view).catch(() => {});
      if (this.#projectsToo) void this.#loadProjects().catch(() => {});
      this.#projectsToo = false;
    }, 100);
  }

  #scheduleHistory(): void {
    clearTimeout(this.#historyTimer);
    this.#historyTimer = window.setTimeout(() => void this.#loadHistory(this.#view).catch(() => {}), 100);
  }

  #scheduleEntries(): void {
    clearTimeout(this.#entriesTimer);
    this.#entriesTimer = window.setTimeout(() => void this.#loadEntries(this.#view).catch(() => {}), 100);
  }

  /** Shows the chosen run; with `resume`, the run already shown is brought up to date and its terminals subscribed again. */
  async #openRun(view: number, resume = false): Promise<void> {
    if (!resume) {
      this.#teardownDetail();
      this.#run = null;
      this.#messages = [];
      this.#tools.clear();
      this.#live.clear();
      this.#producers = [];
    }
    const rpc = this.#rpc;
    const alias = this.#route.run;
    this.#renderRuns();
    if (!rpc || !alias) return this.#renderOverview();
    let got: ResultOf<"run/get">;
    try {
      got = await rpc.call("run/get", { run: alias });
    } catch (error) {
      if (error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND") {
        this.#toast(`No run "${alias}" in this project`, "error");
        return this.#navigate({ project: this.#route.project, run: null, producer: null }, true);
      }
      throw error;
    }
    if (view !== this.#view) return;
    this.#run = got.run;
    this.#usage = got.usage;
    this.#runs.set(got.run.alias, got.run);
    if (resume) {
      this.#renderRunHeader();
      for (const terminal of this.#terminals.values()) if (!this.#ended.has(terminal.info.channel)) void this.#subscribe(terminal);
      // Input whose answer the drop lost goes again, under the same seq.
      this.#input?.resume();
    } else {
      this.#renderRunLayout();
    }
    await Promise.all([this.#loadHistory(view), this.#loadEntries(view)]);
  }

  /** Reads the conversation after what the page has (all of it the first time). */
  async #loadHistory(view: number): Promise<void> {
    const rpc = this.#rpc;
    const run = this.#run;
    if (!rpc || !run?.model) return;
    let after = this.#messages.at(-1)?.id ?? 0;
    for (;;) {
      const page = await rpc.call("run/history", { run: run.alias, after, limit: 500 });
      if (view !== this.#view || run.alias !== this.#run?.alias) return;
      // Two loads can overlap: only messages after what is shown are added.
      const last = this.#messages.at(-1)?.id ?? 0;
      page.messages = page.messages.filter((m) => m.id > last);
      this.#messages.push(...page.messages);
      if (page.next === null) break;
      after = page.next;
    }
    if (this.#messages.length > MAX_MESSAGES) this.#messages.splice(0, this.#messages.length - MAX_MESSAGES);
    // Text that streamed live is in the stored reply once the turn's assistant message is there.
    for (const m of this.#messages) if (m.role === "assistant") for (const turn of this.#live.keys()) if (turn <= m.turn) this.#live.delete(turn);
    this.#renderConversation();
  }

  /** When the run's entries were last asked for: while a command runs they are read again every few seconds. */
  #entriesAt = 0;

  async #loadEntries(view: number): Promise<void> {
    const rpc = this.#rpc;
    const run = this.#run;
    if (!rpc || !run) return;
    this.#entriesAt = Date.now();
    const { entries } = await rpc.call("entry/list", { run: run.alias, limit: MAX_ENTRIES });
    if (view !== this.#view || run.alias !== this.#run?.alias) return;
    const states = (list: Producer[]) => list.map((p) => `${p.path} ${p.state}`).join("\n");
    const before = states(this.#producers);
    this.#producers = producersOf(entries);
    this.#renderProducers();
    this.#renderDetail();
    // The conversation shows each call's producer state: drawn again only when one changed.
    if (states(this.#producers) !== before) this.#renderConversation();
  }

  // ── navigation ──────────────────────────────────────────────────────────

  #navigate(route: Route, push: boolean): void {
    const before = this.#route;
    this.#route = route;
    const hash = routeHash(route);
    if (location.hash !== hash) {
      if (push) history.pushState(null, "", hash);
      else history.replaceState(null, "", hash);
    }
    if (route.project !== before.project) {
      this.#closeConnection();
      this.#runs.clear();
      this.#proposals.clear();
      this.#teardownDetail();
      this.#run = null;
      this.#renderProposals();
      this.#renderRuns();
      fill(this.#el.main);
      this.#state = "connecting";
      this.#renderStatus();
      void this.#connect();
    } else if (route.run !== before.run) {
      // Which cards are this run's, and which another's, changed.
      this.#renderProposals();
      void this.#openRun(++this.#view).catch((error) => this.#toast(message(error), "error"));
    } else if (route.producer !== before.producer) {
      this.#renderProducers();
      this.#renderDetail();
    }
  }

  #go(patch: Partial<Route>): void {
    this.#navigate({ ...this.#route, ...patch }, true);
  }

  // ── actions ─────────────────────────────────────────────────────────────

  /** A pane's live / whole toggle, kept across re-renders like the abort and cancel buttons (see #actionButton). */
  #toggleButton(channel: number): HTMLButtonElement {
    let button = this.#toggles.get(channel);
    if (!button) {
      button = h("button", { type: "button" });
      button.addEventListener("click", () => this.#reopen(channel, this.#terminals.get(channel)?.mode === "whole" ? "live" : "whole"));
      this.#toggles.set(channel, button);
    }
    return button;
  }

  /**
   * The run's abort button and the shown producer's cancel button are made once per run/producer and kept across
   * re-renders (which come with every streamed chunk): a button replaced between a press and its release loses
   * the click, in a browser as in a test driving one.
   */
  #actionButton(action: "abort" | "cancel", key: string, label: string, onClick: (button: HTMLButtonElement) => unknown): HTMLButtonElement {
    const kept = this.#actionButtons.get(action);
    if (kept?.key === key) return kept.button;
    const button = h("button", { type: "button", class: "danger", "data-action": action }, label);
    button.addEventListener("click", () => void onClick(button));
    this.#actionButtons.set(action, { key, button });
    return button;
  }

  async #act(button: HTMLButtonElement | null, what: string, action: () => Promise<unknown>): Promise<void> {
    if (button) button.disabled = true;
    try {
      await action();
    } catch (error) {
      this.#toast(`${what}: ${message(error)}`, "error");
    } finally {
      if (button) button.disabled = false;
    }
  }

  #resolve(p: Proposal, decision: "accept" | "reject", button: HTMLButtonElement, runner: string, reason: string): Promise<void> {
    return this.#act(button, decision === "accept" ? "Approve" : "Reject", async () => {
      try {
        await this.#rpc!.call("run/resolve", {
          run: p.run,
          path: p.path,
          decision,
          ...(runner ? { runner } : {}),
          ...(reason ? { reason } : {}),
        });
      } catch (error) {
        // Someone decided first: the page learns how from run/resolved; the card goes.
        if (error instanceof SpoolRpcError && error.errorCode === "CONFLICT") {
          this.#proposals.delete(`${p.run}\u0000${p.path}`);
          this.#renderProposals();
          this.#toast(`Already decided elsewhere: ${p.path}`);
          return;
        }
        throw error;
      }
      this.#proposals.delete(`${p.run}\u0000${p.path}`);
      this.#renderProposals();
      // Approving is wanting to watch it: show its output, unless another run is in view.
      if (decision === "accept" && (this.#route.run === null || p.run === this.#route.run)) this.#go({ run: p.run, producer: p.path });
    });
  }

  // ── rendering: frame, projects, runs, proposals ────────────────────────

  #renderStatus(): void {
    const words = { connecting: "connecting …", open: "live", reconnecting: "reconnecting …", "signed-out": "signed out" };
    this.#el.status.className = `conn conn-${this.#state}`;
    this.#el.status.textContent = `${words[this.#state]}${this.#serverVersion && this.#state === "open" ? ` · server ${this.#serverVersion}` : ""}`;
  }

  #renderProjects(): void {
    fill(this.#el.projects, ...projectItems(this.#projects, this.#route.project));
  }

  #renderRuns(): void {
    const pending = new Map<string, number>();
    for (const p of this.#proposals.values()) pending.set(p.run, (pending.get(p.run) ?? 0) + 1);
    fill(this.#el.runs, ...runItems(this.#runs.values(), pending, this.#route));
  }

  /** How many of a run's proposals wait for a decision, as far as the page knows. */
  #pendingOf(run: string): number {
    let n = 0;
    for (const p of this.#proposals.values()) if (p.run === run) n++;
    return n;
  }

  /** Cards already shown are kept (with what was typed in them); only new ones are made. */
  #cards = new Map<string, HTMLElement>();

  /**
   * On a run's page its own proposals come first, and every other run's card says whose it is (a person approving
   * "the first card" there approves one of this run's); on the project's page, oldest first.
   */
  #renderProposals(): void {
    const here = this.#route.run;
    const list = [...this.#proposals.entries()].sort(([, a], [, b]) => Number(b.run === here) - Number(a.run === here) || a.createdAt - b.createdAt);
    const cards = new Map<string, HTMLElement>();
    for (const [key, p] of list) {
      const card = this.#cards.get(key) ?? proposalCard(p, this.#route.project, this.#runners, { resolve: (...args) => void this.#resolve(...args) });
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

  #renderOverview(): void {
    const name = this.#route.project ?? "";
    fill(
      this.#el.main,
      overview(
        this.#projects.find((p) => p.name === name),
        name,
        this.#runs.size,
        this.#runners,
      ),
    );
  }

  // ── rendering: one run ──────────────────────────────────────────────────

  #renderRunLayout(): void {
    fill(
      this.#el.main,
      this.#runEl.header,
      h(
        "div",
        { class: `columns${this.#run?.model ? "" : " no-conversation"}` },
        h(
          "section",
          { class: "col conversation-col", "aria-label": "Conversation" },
          h("h2", null, "Conversation"),
          this.#runEl.conversation,
          this.#runEl.prompt,
        ),
        h("section", { class: "col producers-col", "aria-label": "Commands" }, h("h2", null, "Commands"), this.#runEl.producers, this.#runEl.detail),
      ),
    );
    fill(this.#runEl.conversation);
    fill(this.#runEl.prompt);
    fill(this.#runEl.producers);
    fill(this.#runEl.detail);
    this.#renderRunHeader();
    this.#renderPrompt();
    this.#renderConversation();
  }

  #renderRunHeader(): void {
    const run = this.#run;
    if (!run) return;
    const current = this.#runs.get(run.alias) ?? run;
    const word = runWord(current, this.#pendingOf(run.alias));
    const abort = this.#actionButton("abort", `abort\u0000${run.alias}`, "Abort run", (button) => {
      if (!confirm(`Abort run ${run.alias}? Its model call stops, pending proposals are rejected and running commands cancelled.`)) return;
      void this.#act(button, "Abort", () => this.#rpc!.call("run/abort", { run: run.alias, reason: "aborted from the web view" }));
    });
    const usage = this.#usage && this.#usage.totalTokens > 0 ? `${this.#usage.totalTokens} tokens` : null;
    fill(
      this.#runEl.header,
      h("h1", null, escapeControl(current.alias)),
      h("span", { class: statusClass(word), "data-run-status": word }, word),
      current.title ? h("span", { class: "title" }, escapeControl(current.title)) : null,
      h(
        "span",
        { class: "dim" },
        `${current.model ? `model ${current.model}` : "no model"} · ${current.mode} · turn ${current.turn}${usage ? ` · ${usage}` : ""} · created `,
        since(current.createdAt),
        " ago",
      ),
      h("span", { class: "spacer" }),
      isOpen(current.status) ? abort : null,
    );
  }

  #renderPrompt(): void {
    const run = this.#run;
    if (!run) return;
    if (!run.model) {
      fill(this.#runEl.prompt, h("p", { class: "dim" }, "This run has no model: it is fed by hand, with proposals from clients."));
      return;
    }
    if (this.#runEl.prompt.querySelector("textarea")) return;
    const text = h("textarea", { rows: 2, placeholder: "Prompt this run (Ctrl+Enter to send)", "aria-label": "prompt", maxlength: 100_000 });
    const send = h("button", { type: "submit" }, "Send");
    const submit = (event: Event) => {
      event.preventDefault();
      const prompt = text.value.trim();
      if (!prompt) return;
      void this.#act(send, "Prompt", async () => {
        const reply = await this.#rpc!.call("run/prompt", { run: run.alias, prompt });
        text.value = "";
        if (reply.queued > 1) this.#toast(`Queued as loop ${reply.loop} (${reply.queued - 1} before it)`);
      });
    };
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit(event);
    });
    this.#runEl.prompt.onsubmit = submit;
    fill(this.#runEl.prompt, text, send);
  }

  #renderConversation(): void {
    const box = this.#runEl.conversation;
    const run = this.#run;
    if (!run) return;
    const pinned = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    if (!run.model && this.#messages.length === 0) {
      fill(box, h("p", { class: "dim pad" }, "No conversation: commands reach this run as proposals."));
      return;
    }
    const context = {
      producers: new Map(this.#producers.map((p) => [p.path, p])),
      tools: this.#tools,
      producerHref: (path: string) => routeHash({ ...this.#route, producer: path }),
      calls: new Map(this.#messages.flatMap((m) => m.toolCalls.map((c) => [c.id, callWords(c)] as const))),
    };
    const items = this.#messages.map((m) => messageView(m, context));
    fill(box, ...items, this.#runEl.live);
    this.#renderLive();
    if (pinned) box.scrollTop = box.scrollHeight;
  }

  #renderLive(): void {
    const text = [...this.#live.values()].join("");
    this.#runEl.live.hidden = text.length === 0;
    const box = this.#runEl.conversation;
    const pinned = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    fill(this.#runEl.live, h("span", { class: "who" }, "model (streaming)"), h("div", { class: "text" }, text));
    if (pinned) box.scrollTop = box.scrollHeight;
  }

  #renderProducers(): void {
    if (!this.#run) return;
    if (this.#producers.length === 0) {
      fill(this.#runEl.producers, h("p", { class: "dim pad" }, "No commands yet."));
      return;
    }
    fill(
      this.#runEl.producers,
      producerTable(
        this.#producers,
        this.#route.producer,
        (path) => this.#go({ producer: path }),
        (path, channel) => (path === this.#route.producer ? (this.#terminals.get(channel)?.received ?? 0) : 0),
      ),
    );
  }

  // ── rendering: one producer ─────────────────────────────────────────────

  #teardownDetail(): void {
    const rpc = this.#data;
    for (const [subscription] of this.#subscriptions) if (rpc && !rpc.closed) void rpc.call("stream/unsubscribe", { subscription }).catch(() => {});
    this.#subscriptions.clear();
    for (const terminal of this.#terminals.values()) terminal.dispose();
    this.#terminals.clear();
    this.#toggles.clear();
    this.#ended.clear();
    this.#detailFor = null;
    this.#input?.close();
    this.#input = null;
    this.#inputState = null;
  }

  #selectedProducer(): Producer | undefined {
    return this.#producers.find((p) => p.path === this.#route.producer);
  }

  /** Shows the chosen producer: facts and actions, and a terminal per channel subscribed from the start (or from where it was). */
  #renderDetail(): void {
    const producer = this.#selectedProducer();
    const key = producer ? `${producer.path}\u0000${producer.channels.length}` : null;
    if (key !== this.#detailFor) {
      if (this.#detailFor?.split("\u0000")[0] !== producer?.path) this.#teardownDetail();
      this.#detailFor = key;
      if (!producer) {
        fill(this.#runEl.detail, this.#producers.length > 0 ? h("p", { class: "dim pad" }, "Choose a command to see its output.") : null);
        return;
      }
      // Panes are made again (a channel appeared): the terminal being typed into keeps the keyboard.
      const focused = [...this.#terminals.values()].find((t) => t.element.contains(document.activeElement));
      const panes: HTMLElement[] = [];
      for (const c of producer.channels) {
        const channel = c.channel;
        const terminal = this.#terminals.get(channel) ?? this.#openTerminal(channel, c.name, "live");
        panes.push(
          h(
            "div",
            { class: `pane channel-${channel === 2 ? "stderr" : channel === 1 ? "stdout" : "other"}`, "data-pane": channel },
            h("div", { class: "pane-head", "data-head": channel }),
            terminal.element,
          ),
        );
      }
      fill(this.#runEl.detail, h("div", { class: "detail-meta" }), ...panes);
      focused?.focus();
    }
    this.#renderDetailMeta();
  }

  #renderDetailMeta(): void {
    const producer = this.#selectedProducer();
    const meta = this.#runEl.detail.querySelector(".detail-meta");
    if (!producer || !meta) return;
    this.#syncInput(producer);
    const run = this.#run!.alias;
    const cancel = this.#actionButton("cancel", `cancel\u0000${run}\u0000${producer.path}`, "Cancel", (button) =>
      this.#act(button, "Cancel", () => this.#rpc!.call("stream/cancel", { run, path: producer.path, reason: "cancelled from the web view" })),
    );
    fill(meta, ...producerFacts(producer, cancel));
    for (const c of producer.channels) {
      const channel = c.channel;
      const head = this.#runEl.detail.querySelector(`[data-head="${channel}"]`);
      const terminal = this.#terminals.get(channel);
      if (!head) continue;
      // A channel that ended with nothing in it is one line ("no output"), not an empty terminal.
      const empty = c.status !== ENTRY.streaming && c.bytes === 0 && (terminal?.received ?? 0) === 0;
      head.parentElement?.classList.toggle("empty", empty);
      fill(head, ...channelHead(c, terminal, this.#ended.get(channel)?.status, this.#toggleButton(channel), channel === 1 ? this.#inputState : null));
    }
  }

  /**
   * A producer proposed with a terminal (`tty`) takes what is typed into its output's terminal (channel 1,
   * where a terminal's output all goes) while it runs; any other producer's terminals stay read-only.
   */
  #syncInput(producer: Producer): void {
    const run = this.#run;
    const path = producer.path;
    const terminal = this.#terminals.get(1);
    if (!run || producer.tty === null) return;
    const running = isRunning(producer) && !this.#ended.has(1);
    if (!this.#input) {
      if (!running || !terminal) return;
      const input: TerminalInput = new TerminalInput(run.alias, path, () => this.#rpc, {
        error: (text) => this.#toast(`${path}: ${text}`, "error"),
        closed: (reason) => {
          if (this.#input !== input) return;
          this.#inputState = { live: false, reason };
          this.#renderDetailMeta();
        },
      });
      this.#input = input;
      this.#inputState = { live: true };
    }
    const input = this.#input;
    if (!running && !input.closed) {
      input.close();
      this.#inputState = { live: false, reason: "input closed: the command has finished" };
    }
    if (input.closed) terminal?.releaseInput();
    else if (terminal && !terminal.interactive) terminal.takeInput({ data: (text) => input.type(text), resize: (cols, rows) => input.resize(cols, rows) });
  }

  #openTerminal(channel: number, name: string, mode: TerminalMode): ChannelTerminal {
    const terminal: ChannelTerminal = new ChannelTerminal({ channel, name }, mode, {
      pause: (paused) => {
        if (paused) this.#pause(terminal);
        else void this.#subscribe(terminal);
      },
      skipped: () => this.#renderDetailMeta(),
    });
    this.#terminals.set(channel, terminal);
    void this.#subscribe(terminal);
    return terminal;
  }

  /** Shows a channel again from its first byte, in the other mode. */
  #reopen(channel: number, mode: TerminalMode): void {
    const old = this.#terminals.get(channel);
    if (!old) return;
    this.#pause(old);
    this.#ended.delete(channel);
    const fresh = this.#openTerminal(channel, old.info.name, mode);
    old.element.replaceWith(fresh.element);
    old.dispose();
    this.#renderDetailMeta();
  }

  /** Subscribes a terminal's channel after the last seq it holds. */
  async #subscribe(terminal: ChannelTerminal): Promise<void> {
    const rpc = this.#data;
    const run = this.#run;
    const path = this.#route.producer;
    if (!rpc || !run || !path || this.#terminals.get(terminal.info.channel) !== terminal) return;
    try {
      const { subscription } = await rpc.call("stream/subscribe", {
        run: run.alias,
        path,
        channel: terminal.info.channel,
        after: terminal.lastSeq,
        encoding: "base64",
      });
      if (this.#terminals.get(terminal.info.channel) !== terminal) {
        void rpc.call("stream/unsubscribe", { subscription }).catch(() => {});
        return;
      }
      this.#subscriptions.set(subscription, terminal);
    } catch (error) {
      if (!rpc.closed) this.#toast(`Output of ${path}: ${message(error)}`, "error");
    }
  }

  /** A live terminal the server dropped as lagging: it learns where the channel ends, then subscribes from a few chunks before. */
  async #jumpToEnd(terminal: ChannelTerminal): Promise<void> {
    const rpc = this.#data;
    const run = this.#run;
    const path = this.#route.producer;
    if (!rpc || !run || !path || this.#terminals.get(terminal.info.channel) !== terminal) return;
    try {
      // Subscribing after the end replays nothing; its answer says where the end is (seq and bytes, read together).
      const probe = await rpc.call("stream/subscribe", {
        run: run.alias,
        path,
        channel: terminal.info.channel,
        after: Number.MAX_SAFE_INTEGER,
        encoding: "base64",
      });
      void rpc.call("stream/unsubscribe", { subscription: probe.subscription }).catch(() => {});
      const end = probe.channels[0];
      if (end) terminal.jump(Math.max(terminal.lastSeq, end.lastSeq - JUMP_BACK_CHUNKS), end.lastSeq, end.bytes);
    } catch (error) {
      if (!rpc.closed) this.#toast(`Output of ${path}: ${message(error)}`, "error");
    }
    await this.#subscribe(terminal);
  }

  /** The terminal is too far behind: stop its subscription until it has drawn what it holds. */
  #pause(terminal: ChannelTerminal): void {
    for (const [subscription, t] of this.#subscriptions) {
      if (t !== terminal) continue;
      this.#subscriptions.delete(subscription);
      void this.#data?.call("stream/unsubscribe", { subscription }).catch(() => {});
    }
    this.#renderDetailMeta();
  }

  // ── small things ────────────────────────────────────────────────────────

  #toast(text: string, kind: "info" | "error" = "info"): void {
    const toast = h("div", { class: `toast ${kind}` }, text);
    this.#el.toasts.append(toast);
    while (this.#el.toasts.children.length > 5) this.#el.toasts.firstElementChild?.remove();
    setTimeout(() => toast.remove(), kind === "error" ? 10_000 : 5_000);
  }

  /**
   * The channel sizes in the pane headings and in the producers table follow what the terminals received;
   * while a command of the run runs, its entries are read again every few seconds for the other rows.
   */
  #refreshSizes(): void {
    const producer = this.#selectedProducer();
    const row = producer ? this.#runEl.producers.querySelector(`tr[data-producer="${CSS.escape(producer.path)}"]`) : null;
    for (const [channel, terminal] of this.#terminals) {
      const size = this.#runEl.detail.querySelector(`[data-head="${channel}"] .size`);
      const shown = bytes(terminal.received);
      if (size && terminal.received > 0 && size.textContent !== shown && this.#ended.get(channel) === undefined) size.textContent = shown;
      const entry = producer?.channels.find((c) => c.channel === channel);
      const cell = row?.querySelector(`.size[data-channel="${channel}"]`);
      if (entry && cell) {
        const text = channelSize(entry, terminal.received);
        if (cell.textContent !== text) cell.textContent = text;
      }
    }
    if (this.#producers.some(isRunning) && Date.now() - this.#entriesAt >= ENTRIES_EVERY_MS) this.#scheduleEntries();
  }

  #refreshAges(): void {
    for (const el of this.#root.querySelectorAll<HTMLTimeElement>("time[data-since]")) {
      const text = age(Number(el.dataset.since));
      if (!el.textContent?.endsWith(text)) el.textContent = text;
    }
  }
}

/** The server's words with `…` spans as code elements (the server writes commands that way), never as literal backticks. */
function withCode(text: string): (string | HTMLElement)[] {
  return text.split("`").map((part, i) => (i % 2 === 1 ? h("code", null, part) : part));
}

/** Marks a proposal's card as another run's (on a run's page), or not: a class and a visible note in its head. */
function markOtherRun(card: HTMLElement, other: boolean): void {
  card.classList.toggle("other-run", other);
  const note = card.querySelector<HTMLElement>(".other-run-note");
  if (note) note.hidden = !other;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function errorText(response: Response): Promise<string> {
  try {
    return String(((await response.json()) as { error?: string }).error ?? response.statusText);
  } catch {
    return response.statusText;
  }
}

export function start(root: HTMLElement): void {
  void new App(root).start();
}
