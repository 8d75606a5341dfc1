import type { ResultOf, SpoolNotifications } from "../../client/api.js";
import { fill, h } from "./dom.js";
import { age, bytes, duration, ENTRY, entryStatusWord, escapeControl, hasControl, OPEN_RUN, runStatusWord, statusClass } from "./format.js";
import { Rpc, RpcError } from "./rpc.js";
import { ChannelTerminal } from "./terminal.js";

type Project = ResultOf<"project/list">["projects"][number];
type Run = ResultOf<"run/list">["runs"][number];
type Entry = ResultOf<"entry/list">["entries"][number];
type Message = ResultOf<"run/history">["messages"][number];
type Runner = ResultOf<"runner/list">["runners"][number];
type Proposal = SpoolNotifications["run/proposal"] & { seenAt: number };
type ToolNotice = SpoolNotifications["run/tool"];

const CLIENT = { name: "spool-web", version: "1" };
/** Messages of a run's conversation the page keeps (the oldest are dropped beyond it). */
const MAX_MESSAGES = 2000;
/** Entries of a run listed (logs and their channels). */
const MAX_ENTRIES = 3000;

/** Where the page is: project, run and producer (a log path), kept in the address's fragment. */
interface Route {
  project: string | null;
  run: string | null;
  producer: string | null;
}

function readRoute(): Route {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { project: parts[0] || null, run: parts[1] || null, producer: parts[2] || null };
}

function routeHash(route: Route): string {
  const parts = [route.project, route.run, route.producer].filter((p): p is string => Boolean(p));
  return `#/${parts.map(encodeURIComponent).join("/")}`;
}

/** A producer as the page shows it: its log entry and its data channels. */
interface Producer {
  log: Entry;
  channels: Entry[];
}

/** What a producer's log entry says about where it stands. */
function producerState(p: Producer): { word: string; running: boolean } {
  if (p.log.status === ENTRY.proposed) return { word: "proposed", running: false };
  if (p.log.status === ENTRY.rejected) return { word: "rejected", running: false };
  const open = p.channels.some((c) => c.status === ENTRY.streaming);
  if (open || p.log.attributes.outcome === undefined) return { word: open || p.channels.length > 0 ? "running" : "accepted", running: open };
  return { word: entryStatusWord(Number(p.log.attributes.status ?? p.channels[0]?.status ?? p.log.status)), running: false };
}

/** Escaped text, marked when escaping changed it so people notice hidden characters. */
function shown(text: string, cls = ""): HTMLElement {
  return h(
    "span",
    { class: `${cls}${hasControl(text) ? " escaped" : ""}`, title: hasControl(text) ? "contains control characters, shown escaped" : null },
    escapeControl(text),
  );
}

function since(time: number): HTMLElement {
  return h("time", { "data-since": time, datetime: new Date(time).toISOString(), title: new Date(time).toLocaleString() }, age(time));
}

const isOpen = (status: number) => OPEN_RUN.includes(status);

/**
 * The web view: one WebSocket joined to the chosen project (a new one when the project changes), the
 * project's runs and pending proposals in view, the chosen run's conversation and producers, and the
 * chosen producer's channels live in terminals. A dropped connection is opened again and everything
 * reloaded; terminals resume after the last seq they hold.
 */
export class App {
  readonly #root: HTMLElement;
  #rpc: Rpc | null = null;
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
    setInterval(() => this.#refreshAges(), 10_000);
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
        h("p", null, reason || "This page is not signed in."),
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
    let rpc: Rpc;
    try {
      rpc = await Rpc.connect(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`);
    } catch {
      return this.#lost(conn);
    }
    if (conn !== this.#conn) return rpc.close();
    this.#rpc = rpc;
    rpc.onClose(() => this.#lost(conn));
    this.#listen(rpc);
    try {
      await this.#join(rpc);
      this.#retryMs = 500;
    } catch (error) {
      if (conn !== this.#conn || rpc.closed) return;
      this.#toast(`Could not load: ${message(error)}`, "error");
    }
  }

  /** After a drop: a page whose session is gone says so; otherwise it connects again, waiting longer each time. */
  async #lost(conn: number): Promise<void> {
    if (conn !== this.#conn || this.#state === "signed-out") return;
    this.#rpc = null;
    // Subscriptions die with the connection; the terminals stay, to resume after their last seq.
    this.#subscriptions.clear();
    this.#state = "reconnecting";
    this.#renderStatus();
    for (const terminal of this.#terminals.values()) if (!terminal.paused) terminal.note("[connection lost; reconnecting …]");
    const session = await fetch("/session", { cache: "no-store" }).catch(() => null);
    if (session?.status === 401) return this.#signedOut(await errorText(session));
    this.#retryTimer = window.setTimeout(() => void this.#connect(), this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, 5_000);
  }

  #closeConnection(): void {
    this.#conn++;
    this.#view++;
    clearTimeout(this.#retryTimer);
    this.#rpc?.close();
    this.#rpc = null;
  }

  /** Lists the projects, joins the chosen one and loads what is in view. */
  async #join(rpc: Rpc): Promise<void> {
    const view = ++this.#view;
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
    const joined = await rpc.call("initialize", { project: name, create: false, client: CLIENT, protocolVersion: "1.0" });
    this.#serverVersion = joined.server.version;
    this.#connectionId = joined.connectionId;
    this.#state = "open";
    this.#renderStatus();
    await Promise.all([this.#loadRuns(rpc, view), this.#loadRunners(rpc)]);
    this.#renderProposals();
    // Back after a drop on the same run: keep what is shown and catch up.
    await this.#openRun(view, this.#run !== null && this.#run.alias === this.#route.run);
  }

  #listen(rpc: Rpc): void {
    rpc.on("run/proposal", (p) => {
      this.#proposals.set(`${p.run}\u0000${p.path}`, { ...p, seenAt: Date.now() });
      if (!this.#runs.has(p.run)) this.#scheduleRunsReload();
      this.#renderProposals();
      this.#renderRuns();
      if (p.run === this.#run?.alias) this.#scheduleEntries();
    });
    rpc.on("run/resolved", (r) => {
      const key = `${r.run}\u0000${r.path}`;
      if (this.#proposals.delete(key) && r.resolver.connectionId !== this.#connectionId) {
        const who = r.resolver.kind === "rule" ? "an always-allow rule" : r.resolver.kind === "abort" ? "run/abort" : (r.resolver.client ?? r.resolvedBy);
        this.#toast(`${r.decision === "accept" ? "Accepted" : "Rejected"} by ${escapeControl(who)}: ${r.run} ${r.path}`);
      }
      this.#renderProposals();
      this.#renderRuns();
      if (r.run === this.#run?.alias) this.#scheduleEntries();
    });
    rpc.on("run/state", (s) => {
      const run = this.#runs.get(s.run);
      if (!run) return this.#scheduleRunsReload();
      run.status = s.status;
      run.turn = s.turn;
      run.updatedAt = Date.now();
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
      });
    }
    rpc.on("stream/data", (d) => this.#subscriptions.get(d.subscription)?.push(d.seq, d.chunk));
    rpc.on("stream/end", (e) => {
      const terminal = this.#subscriptions.get(e.subscription);
      if (!terminal) return;
      this.#subscriptions.delete(e.subscription);
      this.#ended.set(terminal.info.channel, e);
      this.#renderDetailMeta();
    });
    rpc.on("stream/lagged", (l) => {
      const terminal = this.#subscriptions.get(l.subscription);
      if (!terminal) return;
      this.#subscriptions.delete(l.subscription);
      void this.#subscribe(terminal);
    });
  }

  // ── loading ─────────────────────────────────────────────────────────────

  async #loadProjects(): Promise<void> {
    const rpc = this.#rpc;
    if (!rpc) return;
    this.#projects = (await rpc.call("project/list", {})).projects;
    this.#renderProjects();
  }

  async #loadRuns(rpc: Rpc, view: number): Promise<void> {
    const { runs } = await rpc.call("run/list", { limit: 500 });
    if (view !== this.#view) return;
    this.#runs = new Map(runs.map((r) => [r.alias, r]));
    this.#renderRuns();
  }

  async #loadRunners(rpc: Rpc): Promise<void> {
    this.#runners = (await rpc.call("runner/list", {})).runners;
    // Cards made before the runners were known offer them now.
    this.#cards.clear();
    this.#renderProposals();
  }

  #runsTimer = 0;
  #scheduleRunsReload(): void {
    clearTimeout(this.#runsTimer);
    this.#runsTimer = window.setTimeout(() => {
      if (this.#rpc) void this.#loadRuns(this.#rpc, this.#view).catch(() => {});
    }, 200);
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
      if (error instanceof RpcError && error.code === "NOT_FOUND") {
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

  async #loadEntries(view: number): Promise<void> {
    const rpc = this.#rpc;
    const run = this.#run;
    if (!rpc || !run) return;
    const { entries } = await rpc.call("entry/list", { run: run.alias, limit: MAX_ENTRIES });
    if (view !== this.#view || run.alias !== this.#run?.alias) return;
    const logs = new Map<string, Producer>();
    for (const e of entries) if (e.path.startsWith("log://")) logs.set(e.path, { log: e, channels: [] });
    for (const e of entries) {
      const log = typeof e.attributes.log === "string" ? logs.get(e.attributes.log) : undefined;
      if (log) log.channels.push(e);
    }
    for (const p of logs.values()) p.channels.sort((a, b) => Number(a.attributes.channel) - Number(b.attributes.channel));
    this.#producers = [...logs.values()].reverse();
    this.#renderProducers();
    this.#renderDetail();
    this.#renderConversation();
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
        if (error instanceof RpcError && error.code === "CONFLICT") {
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
    fill(
      this.#el.projects,
      ...this.#projects.map((p) =>
        h(
          "a",
          {
            href: routeHash({ project: p.name, run: null, producer: null }),
            class: `item${p.name === this.#route.project ? " selected" : ""}`,
            title: p.root,
            "data-project": p.name,
          },
          h("span", { class: "name" }, p.name),
          p.waiting > 0 ? h("span", { class: "badge waiting", title: "runs waiting on a proposal" }, String(p.waiting)) : null,
          p.open > 0 ? h("span", { class: "badge open", title: "open runs" }, String(p.open)) : null,
          h("span", { class: "dim" }, `${p.runs} run${p.runs === 1 ? "" : "s"}`),
        ),
      ),
    );
  }

  #renderRuns(): void {
    const runs = [...this.#runs.values()].sort((a, b) => Number(isOpen(b.status)) - Number(isOpen(a.status)) || b.updatedAt - a.updatedAt);
    const pending = new Map<string, number>();
    for (const p of this.#proposals.values()) pending.set(p.run, (pending.get(p.run) ?? 0) + 1);
    if (runs.length === 0) {
      fill(this.#el.runs, h("p", { class: "dim pad" }, "No runs yet."));
      return;
    }
    fill(
      this.#el.runs,
      ...runs.map((r) => {
        const word = runStatusWord(r.status);
        const waiting = pending.get(r.alias) ?? 0;
        return h(
          "a",
          {
            href: routeHash({ project: this.#route.project, run: r.alias, producer: null }),
            class: `item run${r.alias === this.#route.run ? " selected" : ""}`,
            "data-run": r.alias,
          },
          h("span", { class: statusClass(word) }, word),
          h("span", { class: "name" }, escapeControl(r.alias)),
          waiting > 0 ? h("span", { class: "badge waiting", title: "proposals waiting for a decision" }, String(waiting)) : null,
          since(r.updatedAt),
          r.title ? h("span", { class: "title" }, escapeControl(r.title)) : null,
        );
      }),
    );
  }

  /** Cards already shown are kept (with what was typed in them); only new ones are made. */
  #cards = new Map<string, HTMLElement>();

  #renderProposals(): void {
    const list = [...this.#proposals.entries()].sort(([, a], [, b]) => a.seenAt - b.seenAt);
    const cards = new Map<string, HTMLElement>();
    for (const [key, p] of list) cards.set(key, this.#cards.get(key) ?? this.#proposalCard(p));
    this.#cards = cards;
    if (list.length === 0) {
      fill(this.#el.proposals);
      return;
    }
    fill(this.#el.proposals, h("h2", null, `Waiting for a decision (${list.length})`), h("div", { class: "cards" }, ...cards.values()));
  }

  #proposalCard(p: Proposal): HTMLElement {
    const a = p.attributes;
    const env = a.env && typeof a.env === "object" ? Object.entries(a.env as Record<string, string>) : [];
    const proposedRunner = typeof a.runner === "string" ? a.runner : "";
    const runnerSelect = h(
      "select",
      { "aria-label": "runner" },
      h("option", { value: "" }, `default runner${this.#defaultRunnerName() ? ` (${this.#defaultRunnerName()})` : ""}`),
      ...this.#runners
        .filter((r) => r.state === "attached")
        .map((r) => h("option", { value: r.name, selected: r.name === proposedRunner }, `${escapeControl(r.name)} · ${r.backend}`)),
    );
    const reason = h("input", { type: "text", placeholder: "reason (optional)", "aria-label": "reason", maxlength: 500 });
    const approve = h("button", { type: "button", class: "approve" }, "Approve");
    const reject = h("button", { type: "button", class: "reject" }, "Reject");
    approve.addEventListener("click", () => void this.#resolve(p, "accept", approve, runnerSelect.value, ""));
    reject.addEventListener("click", () => void this.#resolve(p, "reject", reject, "", reason.value.trim()));
    return h(
      "article",
      { class: "card proposal", "data-path": p.path, "data-run": p.run },
      h(
        "div",
        { class: "card-head" },
        h("span", { class: "tool" }, p.tool),
        a.readOnly ? h("span", { class: "badge ro", title: "runs in the read-only sandbox" }, "read-only") : null,
        h("a", { href: routeHash({ project: this.#route.project, run: p.run, producer: null }) }, escapeControl(p.run)),
        h("span", { class: "dim path" }, escapeControl(p.path)),
        since(p.seenAt),
      ),
      h("pre", { class: "command" }, "$ ", shown(p.command)),
      h(
        "dl",
        { class: "facts" },
        h("dt", null, "cwd"),
        h("dd", null, typeof a.cwd === "string" && a.cwd ? shown(a.cwd) : h("span", { class: "dim" }, "project root")),
        h("dt", null, "env"),
        h(
          "dd",
          null,
          env.length === 0
            ? h("span", { class: "dim" }, "none added")
            : h("span", null, ...env.map(([k, v]) => h("code", { class: "env" }, shown(`${k}=${v}`)))),
        ),
        h("dt", null, "runner"),
        h("dd", null, runnerSelect),
      ),
      h("div", { class: "actions" }, approve, reject, reason),
    );
  }

  #defaultRunnerName(): string {
    return (this.#runners.find((r) => r.default) ?? this.#runners.find((r) => r.embedded))?.name ?? "";
  }

  #renderOverview(): void {
    const runners = this.#runners.map((r) =>
      h(
        "li",
        null,
        h("span", { class: statusClass(r.state === "attached" ? "done" : "waiting") }, r.state),
        " ",
        h("strong", null, escapeControl(r.name)),
        ` ${r.backend}${r.default ? " · default" : ""}${r.embedded ? " · embedded" : ""} · sandbox ${r.sandbox.kind} · ${r.running} running`,
      ),
    );
    fill(
      this.#el.main,
      h(
        "div",
        { class: "overview" },
        h("h1", null, this.#route.project ?? ""),
        h("p", { class: "dim" }, this.#projects.find((p) => p.name === this.#route.project)?.root ?? ""),
        h("p", null, this.#runs.size === 0 ? "No runs yet." : "Choose a run on the left to follow its conversation and output."),
        h("h2", null, "Runners"),
        runners.length === 0 ? h("p", { class: "dim" }, "No runner is attached.") : h("ul", { class: "runners" }, ...runners),
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
        h("section", { class: "col producers-col", "aria-label": "Producers" }, h("h2", null, "Producers"), this.#runEl.producers, this.#runEl.detail),
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
    const word = runStatusWord(current.status);
    const abort = h("button", { type: "button", class: "danger", "data-action": "abort" }, "Abort run");
    abort.addEventListener("click", () => {
      if (!confirm(`Abort run ${run.alias}? Its model call stops, pending proposals are rejected and running commands cancelled.`)) return;
      void this.#act(abort, "Abort", () => this.#rpc!.call("run/abort", { run: run.alias, reason: "aborted from the web view" }));
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
    const byPath = new Map(this.#producers.map((p) => [p.log.path, p]));
    const items = this.#messages.map((m) => this.#messageView(m, byPath));
    fill(box, ...items, this.#runEl.live);
    this.#renderLive();
    if (pinned) box.scrollTop = box.scrollHeight;
  }

  #messageView(m: Message, byPath: Map<string, Producer>): HTMLElement {
    if (m.role === "user") {
      return h(
        "div",
        { class: `msg user${m.note ? " note" : ""}` },
        h("span", { class: "who" }, m.note ? "note" : "prompt"),
        h("div", { class: "text" }, m.text ?? ""),
      );
    }
    if (m.role === "tool") {
      return h(
        "details",
        { class: "msg tool-result" },
        h("summary", null, `answer to ${m.toolCallId ?? "a call"}`, " ", since(m.createdAt)),
        h("pre", null, escapeControl(m.text ?? "")),
      );
    }
    const calls = m.toolCalls.map((c) => {
      const live = this.#tools.get(c.id);
      const path = c.path ?? live?.path ?? null;
      const producer = path ? byPath.get(path) : undefined;
      const word = producer ? producerState(producer).word : (live?.status ?? (c.status !== null ? entryStatusWord(c.status) : ""));
      const args = Object.entries(c.arguments)
        .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(", ");
      return h(
        "div",
        { class: "call" },
        h("span", { class: "tool" }, c.tool),
        " ",
        shown(args.length > 400 ? `${args.slice(0, 400)}…` : args, "args"),
        word ? h("span", { class: statusClass(word) }, word) : null,
        path && producer ? h("a", { href: routeHash({ ...this.#route, producer: path }), class: "path" }, "output") : null,
      );
    });
    return h(
      "div",
      { class: "msg assistant" },
      h("span", { class: "who" }, "model", " ", since(m.createdAt)),
      m.text ? h("div", { class: "text" }, m.text) : null,
      ...calls,
    );
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
      h(
        "table",
        null,
        h(
          "thead",
          null,
          h("tr", null, h("th", null, "status"), h("th", null, "command"), h("th", null, "exit"), h("th", null, "time"), h("th", null, "output")),
        ),
        h(
          "tbody",
          null,
          ...this.#producers.map((p) => {
            const state = producerState(p);
            const a = p.log.attributes;
            const exit = a.signal ? String(a.signal) : a.exit_code !== undefined && a.exit_code !== null ? String(a.exit_code) : "";
            const row = h(
              "tr",
              { class: p.log.path === this.#route.producer ? "selected" : "", "data-producer": p.log.path, tabindex: 0 },
              h("td", null, h("span", { class: statusClass(state.word) }, state.word)),
              h("td", { class: "cmd" }, shown(String(a.command ?? p.log.path))),
              h("td", null, exit),
              h("td", null, typeof a.duration === "number" ? duration(a.duration) : ""),
              h("td", { class: "dim" }, p.channels.map((c) => `${String(c.attributes.name ?? c.attributes.channel)} ${bytes(c.bytes)}`).join(" · ")),
            );
            const open = () => this.#go({ producer: p.log.path });
            row.addEventListener("click", open);
            row.addEventListener("keydown", (event) => {
              if (event.key === "Enter") open();
            });
            return row;
          }),
        ),
      ),
    );
  }

  // ── rendering: one producer ─────────────────────────────────────────────

  #teardownDetail(): void {
    const rpc = this.#rpc;
    for (const [subscription] of this.#subscriptions) if (rpc && !rpc.closed) void rpc.call("stream/unsubscribe", { subscription }).catch(() => {});
    this.#subscriptions.clear();
    for (const terminal of this.#terminals.values()) terminal.dispose();
    this.#terminals.clear();
    this.#ended.clear();
    this.#detailFor = null;
  }

  #selectedProducer(): Producer | undefined {
    return this.#producers.find((p) => p.log.path === this.#route.producer);
  }

  /** Shows the chosen producer: facts and actions, and a terminal per channel subscribed from the start (or from where it was). */
  #renderDetail(): void {
    const producer = this.#selectedProducer();
    const key = producer ? `${producer.log.path}\u0000${producer.channels.length}` : null;
    if (key !== this.#detailFor) {
      if (this.#detailFor?.split("\u0000")[0] !== producer?.log.path) this.#teardownDetail();
      this.#detailFor = key;
      if (!producer) {
        fill(this.#runEl.detail, this.#producers.length > 0 ? h("p", { class: "dim pad" }, "Choose a command to see its output.") : null);
        return;
      }
      const panes: HTMLElement[] = [];
      for (const c of producer.channels) {
        const channel = Number(c.attributes.channel);
        let terminal = this.#terminals.get(channel);
        if (!terminal) {
          const created = new ChannelTerminal({ channel, name: String(c.attributes.name ?? `channel ${channel}`) }, (paused) => {
            if (paused) this.#pause(created);
            else void this.#subscribe(created);
          });
          terminal = created;
          this.#terminals.set(channel, terminal);
          void this.#subscribe(terminal);
        }
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
    }
    this.#renderDetailMeta();
  }

  #renderDetailMeta(): void {
    const producer = this.#selectedProducer();
    const meta = this.#runEl.detail.querySelector(".detail-meta");
    if (!producer || !meta) return;
    const a = producer.log.attributes;
    const state = producerState(producer);
    const cancel = h("button", { type: "button", class: "danger", "data-action": "cancel" }, "Cancel");
    cancel.addEventListener("click", () =>
      this.#act(cancel, "Cancel", () =>
        this.#rpc!.call("stream/cancel", { run: this.#run!.alias, path: producer.log.path, reason: "cancelled from the web view" }),
      ),
    );
    const process = a.process && typeof a.process === "object" ? (a.process as Record<string, unknown>) : null;
    const where = process ? [process.backend, process.host, process.container, process.pid ? `pid ${process.pid}` : null].filter(Boolean).join(" · ") : null;
    const facts: [string, Node | string | null][] = [
      ["status", h("span", { class: statusClass(state.word), "data-producer-status": state.word }, state.word)],
      ["exit code", a.exit_code !== undefined && a.exit_code !== null ? String(a.exit_code) : null],
      ["signal", a.signal ? String(a.signal) : null],
      ["reason", typeof a.reason === "string" ? shown(a.reason) : null],
      ["duration", typeof a.duration === "number" ? duration(a.duration) : null],
      ["runner", typeof a.runner === "string" ? shown(a.runner) : null],
      ["process", where ? shown(where) : null],
      ["cwd", typeof a.cwd === "string" && a.cwd ? shown(a.cwd) : "project root"],
    ];
    fill(
      meta,
      h("div", { class: "detail-title" }, h("pre", { class: "command" }, "$ ", shown(String(a.command ?? ""))), state.running ? cancel : null),
      h("dl", { class: "facts inline" }, ...facts.filter(([, v]) => v !== null).map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v)))),
    );
    for (const c of producer.channels) {
      const channel = Number(c.attributes.channel);
      const head = this.#runEl.detail.querySelector(`[data-head="${channel}"]`);
      if (!head) continue;
      const terminal = this.#terminals.get(channel);
      const ended = this.#ended.get(channel);
      const status = ended?.status ?? c.status;
      const size = Math.max(c.bytes, terminal?.received ?? 0);
      fill(
        head,
        h("strong", null, String(c.attributes.name ?? `channel ${channel}`)),
        ` ${bytes(size)}`,
        c.lines ? ` · ${c.lines} lines` : "",
        " ",
        h("span", { class: statusClass(entryStatusWord(status)) }, entryStatusWord(status)),
        terminal?.paused ? h("span", { class: "dim" }, " catching up …") : null,
      );
    }
  }

  /** Subscribes a terminal's channel after the last seq it holds. */
  async #subscribe(terminal: ChannelTerminal): Promise<void> {
    const rpc = this.#rpc;
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

  /** The terminal is too far behind: stop its subscription until it has drawn what it holds. */
  #pause(terminal: ChannelTerminal): void {
    for (const [subscription, t] of this.#subscriptions) {
      if (t !== terminal) continue;
      this.#subscriptions.delete(subscription);
      void this.#rpc?.call("stream/unsubscribe", { subscription }).catch(() => {});
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

  #refreshAges(): void {
    for (const el of this.#root.querySelectorAll<HTMLTimeElement>("time[data-since]")) {
      const text = age(Number(el.dataset.since));
      if (!el.textContent?.endsWith(text)) el.textContent = text;
    }
  }
}

const codeIn = (hash: string) => /^#(?:.*&)?code=/.test(hash);

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
