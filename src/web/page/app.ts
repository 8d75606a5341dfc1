import type { SpoolClient } from "../../client/spool-client.js";
import { message, type PageContext, type SignedIn } from "./context.js";
import { fill, h } from "./dom.js";
import { age, deadlineText, escapeControl, RUN, serverNow, setServerClock } from "./format.js";
import { ProposalNotifier } from "./notify.js";
import { codeIn, malformedHash, type Route, readRoute, routeHash } from "./route.js";
import { ProjectView, resolverName } from "./routes/project.js";
import { RunView } from "./routes/run.js";
import { connectPage, errorText, keepKey, type SessionInfo, sessionRequest } from "./session.js";
import { type Elsewhere, signedOutView, takeLink } from "./signin.js";

const CLIENT = { name: "spool-web", version: "1" };
/** How long joining the project may take before the page connects again. */
const JOIN_TIMEOUT_MS = 20_000;

/**
 * The web view: one WebSocket joined to the chosen project (a new one when the project changes), the
 * project's runs and pending proposals in view (ProjectView), the chosen run's conversation and producers
 * (RunView), and the chosen producer's channels live in terminals (ProducerView). A dropped connection is
 * opened again and everything reloaded; terminals resume after the last seq they hold. The app signs in,
 * holds the connections, routes their notifications to the views, and moves between routes.
 */
export class App implements PageContext {
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
  #projectPicked = false;
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
  /** A sign-in link's project root: the project to open once the list is read. */
  #pendingRoot: string | null = null;
  /** Who the page is signed in as (GET /session). */
  #principal: SignedIn = { name: "", role: "viewer" };
  /** Which paired device this browser is. */
  #device: { id: string; name: string } = { id: "", name: "" };

  // Regions of the page.
  readonly #el = {
    status: h("span", { class: "conn" }),
    projects: h("nav", { class: "projects", "aria-label": "Projects" }),
    runs: h("nav", { class: "runs", "aria-label": "Runs" }),
    proposals: h("section", { class: "proposals", "aria-label": "Pending proposals" }),
    main: h("div", { class: "run-view" }),
    toasts: h("div", { class: "toasts", role: "status" }),
  };
  /** Browser notifications for new proposals while the page is in the background; a click opens the proposal's run. */
  readonly #notifier = new ProposalNotifier((run, project) =>
    project === this.#route.project ? this.go({ run, producer: null }) : this.go({ project, run, producer: null }),
  );
  readonly #project = new ProjectView(this, this.#el, connectPage, {
    proposal: (project, p) => this.#notifier.proposal(p, project),
    paused: (project, run, reached) => this.#notifier.paused(project, run, reached),
  });
  readonly #runView = new RunView(this, this.#project, this.#el.main);

  constructor(root: HTMLElement) {
    this.#root = root;
  }

  get projectPicked(): boolean {
    return this.#projectPicked;
  }

  get route(): Route {
    return this.#route;
  }

  get rpc(): SpoolClient | null {
    return this.#rpc;
  }

  get data(): SpoolClient | null {
    return this.#data;
  }

  get connected(): boolean {
    return this.#state === "open" && this.#rpc !== null;
  }

  get view(): number {
    return this.#view;
  }

  get principal(): SignedIn {
    return this.#principal;
  }

  /**
   * Pairs this browser with the fragment's one-time code when there is one, then connects. A page already signed in
   * keeps its device: a link for the same principal is spent and changes nothing; one for another principal asks
   * first, naming both; a link this server does not know (bogus, spent, another server's) is said so, and the page
   * stays as it was.
   */
  async start(): Promise<void> {
    // A sign-in link pasted into a tab already on the page only changes the fragment: start over with it.
    window.addEventListener("hashchange", () => {
      if (codeIn(location.hash)) location.reload();
    });
    const fragment = new URLSearchParams(codeIn(location.hash) ? location.hash.slice(1) : "");
    const code = fragment.get("code");
    let note: string | null = null;
    if (code) {
      // The code leaves the address bar at once, whatever happens next.
      const wanted = fragment.get("project");
      history.replaceState(null, "", `${location.pathname}${wanted ? routeHash({ project: wanted, run: null, producer: null }) : ""}`);
      this.#route = readRoute();
      this.#pendingRoot = fragment.get("root");
      const current = await sessionRequest();
      const outcome = await takeLink(this.#root, code, fragment, current.ok ? ((await current.json()) as SessionInfo) : null);
      if (!outcome.signedIn) return this.#signedOut(outcome.reason, outcome.elsewhere);
      note = outcome.note;
    }
    const session = await sessionRequest();
    if (!session.ok) return this.#signedOut(code ? "" : await errorText(session));
    const info = (await session.json()) as SessionInfo;
    this.#principal = info.principal;
    this.#device = info.device;
    this.#layout();
    if (note) this.toast(note, "error");
    const malformed = () => this.toast(`Not an address of this page: ${escapeControl(location.hash.slice(0, 80))}`, "error");
    if (malformedHash(location.hash)) malformed();
    window.addEventListener("hashchange", () => {
      if (codeIn(location.hash)) return;
      if (malformedHash(location.hash)) return malformed();
      this.navigate(readRoute(), false);
    });
    // Ages in seconds change every second: "0s" must not stand for ten.
    setInterval(() => this.#refreshAges(), 1_000);
    setInterval(() => this.#runView.refreshSizes(), 1_000);
    // Other projects' runs notify only their own connections: their counts are read again now and then.
    setInterval(() => {
      if (document.visibilityState === "visible" && this.#state === "open") void this.#project.loadProjects().catch(() => {});
    }, 30_000);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.#state === "open") void this.#project.loadProjects();
    });
    await this.#connect();
  }

  #signedOut(reason: string, elsewhere: Elsewhere | null = null): void {
    this.#state = "signed-out";
    keepKey(null);
    this.#closeConnection();
    this.#project.others.close();
    fill(this.#root, signedOutView(reason, elsewhere));
  }

  #layout(): void {
    const signOut = h(
      "button",
      { class: "quiet", type: "button", title: "Sign this browser out: it needs a new link to come back", onclick: () => void this.#signOut() },
      "Unpair",
    );
    const device = h(
      "span",
      { class: "device", "data-device": this.#device.id, title: `this device: ${this.#device.name} (${this.#device.id}); spool devices lists it` },
      escapeControl(this.#device.name),
    );
    const { name, role } = this.#principal;
    const who = h(
      "span",
      { class: "who", "data-principal": name, "data-role": role, title: `signed in as ${name}, role ${role}` },
      `${escapeControl(name)} · ${role}`,
    );
    const body = h(
      "div",
      { class: "shell" },
      h(
        "header",
        { class: "top" },
        h("a", { class: "brand", href: "#/" }, "Spool"),
        this.#el.status,
        h("span", { class: "spacer" }),
        who,
        device,
        this.#notifier.button,
        signOut,
      ),
      h("aside", { class: "side" }, h("h2", null, "Projects"), this.#el.projects, h("h2", null, "Runs"), this.#el.runs),
      h("main", { class: "main" }, this.#el.proposals, this.#el.main),
      this.#el.toasts,
    );
    fill(this.#root, body);
    this.#root.classList.remove("boot");
    this.#renderStatus();
  }

  async #signOut(): Promise<void> {
    await sessionRequest({ method: "DELETE" });
    this.#signedOut("This device is unpaired.");
  }

  // ── connection ──────────────────────────────────────────────────────────

  async #connect(): Promise<void> {
    clearTimeout(this.#retryTimer);
    const conn = ++this.#conn;
    const opened = await Promise.allSettled([connectPage(), connectPage()]);
    const [rpc, data] = opened.map((o) => (o.status === "fulfilled" ? o.value : null));
    if (!rpc || !data || conn !== this.#conn) {
      rpc?.close();
      data?.close();
      const failed = opened.find((o) => o.status === "rejected");
      if (conn === this.#conn) void this.#lost(conn, `could not connect (${failed ? message(failed.reason) : "superseded"})`);
      return;
    }
    this.#rpc = rpc;
    this.#data = data;
    // Why a connection ended is in the console (the page says only "reconnecting"), for whoever wonders.
    rpc.onClose((code, reason) => this.#lost(conn, `closed (${code}${reason ? ` ${reason}` : ""})`));
    data.onClose((code, reason) => this.#lost(conn, `data connection closed (${code}${reason ? ` ${reason}` : ""})`));
    this.#listen(rpc, data);
    // One that closed while the other opened told no listener: it is lost all the same.
    if (rpc.closed || data.closed) return void this.#lost(conn, "closed as it opened");
    let timer = 0;
    const joining = this.#join(rpc, data);
    // Given up on (below): what it says later is not heard.
    joining.catch(() => {});
    try {
      await Promise.race([
        joining,
        // Until it is joined: a call the server never answers would leave the page "reconnecting" for good.
        new Promise((_, reject) => {
          timer = window.setTimeout(() => {
            if (this.#state !== "open") reject(new Error(`not joined within ${JOIN_TIMEOUT_MS / 1000} s`));
          }, JOIN_TIMEOUT_MS);
        }),
      ]);
      this.#retryMs = 500;
    } catch (error) {
      if (conn !== this.#conn) return;
      if (rpc.closed || data.closed) return void this.#lost(conn, `closed while joining (${message(error)})`);
      // Not joined (the server busy, a call refused or unanswered): the page would say "reconnecting" for ever; it tries
      // again. Joined: a read that failed is read again (run.ts Reread), not the whole connection made again.
      this.toast(`Could not load: ${message(error)}`, "error");
      if (this.#state !== "open") void this.#lost(conn, `could not join (${message(error)})`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** After a drop: a page whose session is gone says so; otherwise it connects again, waiting longer each time. */
  async #lost(conn: number, why: string): Promise<void> {
    if (conn !== this.#conn || this.#state === "signed-out") return;
    console.info(`spool: connection ${why}; connecting again in ${this.#retryMs} ms`);
    this.#conn++;
    // Both connections go together: the one still open is closed too.
    this.#rpc?.close();
    this.#data?.close();
    this.#rpc = null;
    this.#data = null;
    this.#state = "reconnecting";
    this.#renderStatus();
    this.#runView.producer.lost();
    const session = await sessionRequest().catch(() => null);
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
    const project = this.#project;
    // Ages are told from the server's times: this browser's clock may be off, so the page reads the server's once.
    const sent = Date.now();
    const { time } = await rpc.call("ping", {});
    setServerClock(time, sent, Date.now());
    const { projects } = await rpc.call("project/list", {});
    project.projects = projects;
    if (this.#pendingRoot) {
      // The project the server finds by that root: the oldest of those rooted there (store/projects.ts findProjectByRoot).
      const byRoot = projects.filter((p) => p.root === this.#pendingRoot).sort((a, b) => a.createdAt - b.createdAt)[0];
      this.#pendingRoot = null;
      if (byRoot) {
        this.#route = { project: byRoot.name, run: null, producer: null };
        history.replaceState(null, "", routeHash(this.#route));
      }
    }
    let name = this.#route.project;
    if (!name || !projects.some((p) => p.name === name)) {
      const busiest = [...projects].sort((a, b) => b.waiting - a.waiting || b.open - a.open || (b.updatedAt ?? 0) - (a.updatedAt ?? 0))[0];
      if (name && this.#route.project) this.toast(`No project "${name}" on this server`, "error");
      name = busiest?.name ?? null;
      this.#route = { project: name, run: null, producer: null };
      this.#projectPicked = true;
      history.replaceState(null, "", routeHash(this.#route));
    }
    project.renderProjects();
    // The queue spans every project the principal sees: the others are watched on connections of their own.
    project.others.sync(projects, name);
    if (!name) {
      this.#state = "open";
      this.#renderStatus();
      fill(
        this.#el.main,
        h("div", { class: "empty" }, h("p", null, "This server has no projects yet."), h("p", null, "Start one with ", h("code", null, "spool act"), ".")),
      );
      return;
    }
    const joined = await rpc.initialize(name, { create: false, client: CLIENT });
    // The cards shown stay until the join answers: the server sends every waiting proposal again right after it (in
    // messages that come after this reply), so they are replaced in one step, never dropped for a reconnect.
    project.proposals.clear();
    await data.initialize(name, { create: false, client: CLIENT });
    this.#serverVersion = joined.server.version;
    this.#connectionId = joined.connectionId;
    this.#state = "open";
    this.#renderStatus();
    await Promise.all([project.loadRuns(rpc, view), project.loadRunners(rpc)]);
    project.renderProposals();
    // Back after a drop on the same run: keep what is shown and catch up.
    const shown = this.#runView.run;
    await this.#runView.open(view, shown !== null && shown.alias === this.#route.run);
    // A notification's link names a waiting proposal: its card first, in view.
    if (view === this.#view) project.focus(this.#route.run, this.#route.producer);
  }

  /** The project's notifications go to the views they change; the data connection's to the producer's terminals. */
  #listen(rpc: SpoolClient, data: SpoolClient): void {
    const project = this.#project;
    const run = this.#runView;
    rpc.on("run/proposal", (p) => {
      project.proposals.set(`${p.run}\u0000${p.path}`, p);
      this.#notifier.proposal(p, this.#route.project ?? "");
      if (!project.runs.has(p.run)) project.scheduleRunsReload();
      project.renderProposals();
      project.renderRuns();
      project.scheduleProjects();
      if (run.shows(p.run)) {
        run.renderHeader();
        run.scheduleEntries();
      }
    });
    rpc.on("run/resolved", (r) => {
      const key = `${r.run}\u0000${r.path}`;
      const who = resolverName(r);
      if (project.proposals.has(key) && r.resolver.connectionId !== this.#connectionId) {
        this.toast(`${r.decision === "accept" ? "Accepted" : "Rejected"} by ${escapeControl(who)}: ${r.run} ${r.path}`);
      }
      // The card stays and says what was decided and by whom (this page's own decision: already so).
      if (r.resolver.connectionId !== this.#connectionId) project.decided(this.#route.project ?? "", r, r.decision, who, r.reason);
      project.renderProposals();
      project.renderRuns();
      project.scheduleProjects();
      if (run.shows(r.run)) {
        run.renderHeader();
        run.scheduleEntries();
      }
    });
    rpc.on("run/state", (s) => {
      // A run paused at its budget waits for a person: told as a proposal is (a run the page does not list yet too).
      if (s.event === "budget reached" && s.budget) this.#notifier.paused(this.#route.project ?? "", s.run, s.budget);
      const known = project.runs.get(s.run);
      // A run made by any client of the project (run/create) is announced as "created": it joins the list.
      if (!known || s.event === "created") return project.scheduleRunsReload(s.event === "created");
      // The project's badges (open runs, runs waiting on a proposal) follow its runs' statuses.
      if (known.status !== s.status) project.scheduleProjects();
      // A turn that ended is read again: whether a proposal of it was rejected (shown "rejected", not "done") is the server's to say.
      if (known.status !== s.status && s.status === RUN.done) project.scheduleRunsReload();
      // A run paused at its budget is a card in the queue, until it goes on or ends.
      const pause = s.event === "budget reached" || (known.status === RUN.paused) !== (s.status === RUN.paused);
      if (s.event === "budget reached" && s.budget) known.paused = s.budget;
      known.status = s.status;
      known.turn = s.turn;
      known.updatedAt = serverNow();
      project.renderRuns();
      if (pause) project.renderProposals();
      if (run.shows(s.run)) {
        run.renderHeader();
        run.renderPrompt();
        run.scheduleHistory();
        // What it spent and why it paused are the server's to say: read again when they change.
        if (s.event === "budget reached" || s.event === "budget raised" || s.event === "model replied") void run.refreshRun().catch(() => {});
      }
    });
    rpc.on("run/progress", (p) => run.onProgress(p));
    rpc.on("run/tool", (t) => run.onTool(t));
    rpc.on("run/compaction", (c) => c.phase === "completed" && run.shows(c.run) && run.scheduleHistory());
    for (const method of ["stream/started", "stream/finished", "stream/cancelled"] as const) {
      rpc.on(method, (n) => {
        if (run.shows(n.run)) run.scheduleEntries();
        // What each runner is running changed: the overview's "N running" follows it.
        project.scheduleRunners();
      });
    }
    data.on("stream/data", (d) => run.producer.onData(d));
    data.on("stream/end", (e) => run.producer.onEnd(e));
    data.on("stream/lagged", (l) => run.producer.onLagged(l));
  }

  // ── navigation ──────────────────────────────────────────────────────────

  navigate(route: Route, push: boolean): void {
    const before = this.#route;
    this.#route = route;
    this.#projectPicked = false;
    const hash = routeHash(route);
    if (location.hash !== hash) {
      if (push) history.pushState(null, "", hash);
      else history.replaceState(null, "", hash);
    }
    if (route.project !== before.project) {
      this.#closeConnection();
      this.#project.clear();
      this.#runView.clear();
      this.#project.renderProposals();
      this.#project.renderRuns();
      fill(this.#el.main);
      this.#state = "connecting";
      this.#renderStatus();
      void this.#connect();
    } else if (route.run !== before.run) {
      // Which cards are this run's, and which another's, changed.
      this.#project.renderProposals();
      void this.#runView.open(++this.#view).catch((error) => this.toast(message(error), "error"));
    } else if (route.producer !== before.producer) {
      this.#runView.renderProducers();
      this.#runView.producer.render();
    }
  }

  go(patch: Partial<Route>): void {
    this.navigate({ ...this.#route, ...patch }, true);
  }

  // ── small things ────────────────────────────────────────────────────────

  toast(text: string, kind: "info" | "error" = "info"): void {
    const toast = h("div", { class: `toast ${kind}` }, text);
    this.#el.toasts.append(toast);
    while (this.#el.toasts.children.length > 5) this.#el.toasts.firstElementChild?.remove();
    setTimeout(() => toast.remove(), kind === "error" ? 10_000 : 5_000);
  }

  #renderStatus(): void {
    const words = { connecting: "connecting …", open: "live", reconnecting: "reconnecting …", "signed-out": "signed out" };
    this.#el.status.className = `conn conn-${this.#state}`;
    // The server's version in a part of its own: a phone's top bar leaves it out (it stays in the title) rather than cut the word.
    const version = this.#serverVersion && this.#state === "open" ? `server ${this.#serverVersion}` : null;
    this.#el.status.title = version ?? "";
    fill(this.#el.status, words[this.#state], version ? h("span", { class: "conn-version" }, ` · ${version}`) : null);
    // Whether a card's Approve and Reject can be sent follows the connection (a tap while offline is never lost unseen).
    if (this.#state !== "signed-out") this.#project.markDecidable();
  }

  #refreshAges(): void {
    for (const el of this.#root.querySelectorAll<HTMLTimeElement>("time[data-since]")) {
      const text = age(Number(el.dataset.since));
      if (!el.textContent?.endsWith(text)) el.textContent = text;
    }
    for (const el of this.#root.querySelectorAll<HTMLElement>("[data-deadline]")) {
      const text = deadlineText(Number(el.dataset.deadline));
      if (el.textContent !== text) el.textContent = text;
    }
  }
}

export function start(root: HTMLElement): void {
  void new App(root).start();
}
