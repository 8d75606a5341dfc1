import { SpoolRpcError } from "../../../client/spool-client.js";
import { spendWords } from "../../../protocol/agent-words.js";
import type { ResultOf } from "../../../protocol/methods/index.js";
import type { SpoolNotifications } from "../../../protocol/notifications.js";
import { act, KeptButton, may, type PageContext } from "../context.js";
import { fill, h } from "../dom.js";
import { escapeControl, RUN, serverNow, statusClass } from "../format.js";
import { isOpen, isRunning, type Message, type Producer, producersOf, type Run, runWord, type ToolNotice } from "../model.js";
import { routeHash } from "../route.js";
import { budgetCard } from "../views/budget.js";
import { since } from "../views/common.js";
import { callWords, messageView } from "../views/conversation.js";
import { elapsed, producerTable } from "../views/producer.js";
import { ProducerView } from "./producer.js";

/** Messages of a run's conversation the page keeps (the oldest are dropped beyond it). */
const MAX_MESSAGES = 2000;
/** Entries of a run listed (logs and their channels). */
const MAX_ENTRIES = 3000;
/** While a command of the run in view runs, its entries (sizes, states) are read again this often. */
const ENTRIES_EVERY_MS = 2_000;
/** A read of the conversation or the entries that failed is tried again after this, doubling up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5_000;

/** What the run view reads of the project view: the project's runs, and how many of a run's proposals wait. */
export interface RunHost {
  readonly runs: Map<string, Run>;
  pendingOf(run: string): number;
  renderRuns(): void;
  /** Draws the project's page (no run chosen). */
  renderOverview(): void;
}

/**
 * A read the run view does again soon on request (notifications come in bursts: one read 100 ms after the last). A read
 * that fails (the server busy, a call refused) is tried again, 0.5 s then up to 5 s apart, until one succeeds or
 * another view is shown: a run that ends sends no more notifications, and the page would stay without what it missed.
 */
class Reread {
  #timer = 0;
  #retryMs = RETRY_FIRST_MS;

  constructor(
    readonly read: (view: number) => Promise<void>,
    readonly view: () => number,
  ) {}

  schedule(delayMs = 100): void {
    clearTimeout(this.#timer);
    this.#timer = window.setTimeout(() => {
      const view = this.view();
      this.read(view).then(
        () => {
          this.#retryMs = RETRY_FIRST_MS;
        },
        (error: unknown) => this.failed(view, error),
      );
    }, delayMs);
  }

  /** A read for `view` failed: it is done again later, unless another view is shown now. */
  failed(view: number, error: unknown): void {
    if (view !== this.view()) return;
    // The console keeps why, for whoever wonders why the page lags.
    console.warn(`spool: a read failed and is tried again: ${error instanceof Error ? error.message : String(error)}`);
    this.schedule(this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
  }
}

/** One run (#/project/run): its header, conversation and prompt, its producers, and the chosen producer (see ProducerView). */
export class RunView {
  readonly #page: PageContext;
  readonly #host: RunHost;
  /** Where the run is drawn (the app's main region). */
  readonly #main: HTMLElement;
  #run: Run | null = null;
  #usage: ResultOf<"run/get">["usage"] | null = null;
  #messages: Message[] = [];
  #tools = new Map<string, ToolNotice>();
  #live = new Map<number, string>();
  #producers: Producer[] = [];
  /** The conversation and the entries, each read again on request and after a read that failed. */
  readonly #history = new Reread(
    (view) => this.#loadHistory(view),
    () => this.#page.view,
  );
  readonly #entries = new Reread(
    (view) => this.#loadEntries(view),
    () => this.#page.view,
  );
  /** When the run's entries were last asked for: while a command runs they are read again every few seconds. */
  #entriesAt = 0;
  /** A prompt was sent from this page: the conversation follows its end until the person scrolls up. */
  #follow = false;
  /** The kept abort button, for the run shown. */
  readonly #abort = new KeptButton("abort", "Abort run");
  readonly producer: ProducerView;
  readonly #el = {
    header: h("header", { class: "run-header" }),
    conversation: h("div", { class: "conversation" }),
    live: h("div", { class: "live" }),
    prompt: h("form", { class: "prompt" }),
    producers: h("div", { class: "producer-list" }),
  };

  constructor(page: PageContext, host: RunHost, main: HTMLElement) {
    this.#page = page;
    this.#host = host;
    this.#main = main;
    this.producer = new ProducerView(page, { run: () => this.#run, producers: () => this.#producers });
    // The person moving through the conversation takes over: it follows its end again only while scrolled to it.
    for (const event of ["wheel", "touchstart", "keydown", "mousedown"]) {
      this.#el.conversation.addEventListener(event, () => (this.#follow = false), { passive: true });
    }
  }

  /** The run shown, once read. */
  get run(): Run | null {
    return this.#run;
  }

  /** Whether `run` is the one shown. */
  shows(run: string): boolean {
    return run === this.#run?.alias;
  }

  /** Nothing shown any more (another project). */
  clear(): void {
    this.producer.teardown();
    this.#run = null;
  }

  /** Shows the chosen run; with `resume`, the run already shown is brought up to date and its terminals subscribed again. */
  async open(view: number, resume = false): Promise<void> {
    const page = this.#page;
    if (!resume) {
      this.#follow = false;
      this.producer.teardown();
      this.#run = null;
      this.#messages = [];
      this.#tools.clear();
      this.#live.clear();
      this.#producers = [];
    }
    const rpc = page.rpc;
    const alias = page.route.run;
    this.#host.renderRuns();
    if (!rpc || !alias) return this.#host.renderOverview();
    let got: ResultOf<"run/get">;
    try {
      got = await rpc.call("run/get", { run: alias });
    } catch (error) {
      if (error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND") {
        page.toast(`No run "${alias}" in this project`, "error");
        return page.navigate({ project: page.route.project, run: null, producer: null }, true);
      }
      throw error;
    }
    if (view !== page.view) return;
    this.#run = got.run;
    this.#usage = got.usage;
    this.#host.runs.set(got.run.alias, got.run);
    if (resume) {
      this.renderHeader();
      this.producer.resume();
    } else {
      this.#renderLayout();
    }
    const loads = await Promise.allSettled([this.#loadHistory(view), this.#loadEntries(view)]);
    // What could not be read is read again (the page then says nothing more); the first failure is shown.
    if (loads[0].status === "rejected") this.#history.failed(view, loads[0].reason);
    if (loads[1].status === "rejected") this.#entries.failed(view, loads[1].reason);
    for (const load of loads) if (load.status === "rejected") throw load.reason;
  }

  // ── notifications about the run shown ──────────────────────────────────

  onProgress(p: SpoolNotifications["run/progress"]): void {
    if (!this.shows(p.run)) return;
    this.#live.set(p.turn, (this.#live.get(p.turn) ?? "") + p.delta);
    this.#renderLive();
  }

  onTool(t: SpoolNotifications["run/tool"]): void {
    if (!this.shows(t.run)) return;
    this.#tools.set(t.id, t);
    this.scheduleHistory();
  }

  /** Reads the conversation again soon (and again after a read that fails: Reread). */
  scheduleHistory(): void {
    this.#history.schedule();
  }

  /** Reads the run's entries again soon (and again after a read that fails: Reread). */
  scheduleEntries(): void {
    this.#entries.schedule();
  }

  // ── loading ─────────────────────────────────────────────────────────────

  /** Reads the conversation after what the page has (all of it the first time). */
  async #loadHistory(view: number): Promise<void> {
    const rpc = this.#page.rpc;
    const run = this.#run;
    if (!rpc || !run?.model) return;
    let after = this.#messages.at(-1)?.id ?? 0;
    for (;;) {
      const page = await rpc.call("run/history", { run: run.alias, after, limit: 500 });
      if (view !== this.#page.view || run.alias !== this.#run?.alias) return;
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
    const rpc = this.#page.rpc;
    const run = this.#run;
    if (!rpc || !run) return;
    this.#entriesAt = Date.now();
    const { entries } = await rpc.call("entry/list", { run: run.alias, limit: MAX_ENTRIES });
    if (view !== this.#page.view || run.alias !== this.#run?.alias) return;
    const states = (list: Producer[]) => list.map((p) => `${p.path} ${p.state}`).join("\n");
    const before = states(this.#producers);
    this.#producers = producersOf(entries);
    this.renderProducers();
    this.producer.render();
    // The conversation shows each call's producer state: drawn again only when one changed.
    if (states(this.#producers) !== before) this.#renderConversation();
  }

  /**
   * The channel sizes in the pane headings and in the producers table follow what the terminals received;
   * while a command of the run runs, its entries are read again every few seconds for the other rows.
   */
  refreshSizes(): void {
    const producer = this.producer.selected();
    this.producer.refreshSizes(producer ? this.#el.producers.querySelector(`tr[data-producer="${CSS.escape(producer.path)}"]`) : null);
    // A running command's time so far counts up between reads of the entries.
    for (const cell of this.#el.producers.querySelectorAll<HTMLElement>("td.time[data-started]")) {
      const text = elapsed(serverNow() - Number(cell.dataset.started));
      if (cell.textContent !== text) cell.textContent = text;
    }
    if (this.#producers.some(isRunning) && Date.now() - this.#entriesAt >= ENTRIES_EVERY_MS) this.scheduleEntries();
  }

  // ── rendering ───────────────────────────────────────────────────────────

  #renderLayout(): void {
    fill(
      this.#main,
      this.#el.header,
      h(
        "div",
        { class: `columns${this.#run?.model ? "" : " no-conversation"}` },
        h("section", { class: "col conversation-col", "aria-label": "Conversation" }, h("h2", null, "Conversation"), this.#el.conversation, this.#el.prompt),
        h("section", { class: "col producers-col", "aria-label": "Commands" }, h("h2", null, "Commands"), this.#el.producers, this.producer.element),
      ),
    );
    fill(this.#el.conversation);
    fill(this.#el.prompt);
    fill(this.#el.producers);
    fill(this.producer.element);
    this.renderHeader();
    this.renderPrompt();
    this.#renderConversation();
  }

  renderHeader(): void {
    const run = this.#run;
    if (!run) return;
    const current = this.#host.runs.get(run.alias) ?? run;
    const word = runWord(current, this.#host.pendingOf(run.alias));
    const abort = this.#abort.for(`abort\u0000${run.alias}`, (button) => {
      if (!confirm(`Abort run ${run.alias}? Its model call stops, pending proposals are rejected and running commands cancelled.`)) return;
      void act(this.#page, button, "Abort", () => this.#page.rpc!.call("run/abort", { run: run.alias, reason: "aborted from the web view" }));
    });
    const spent = current.spend && (current.spend.tokens > 0 || current.budget) ? spendWords(current.spend, current.budget) : null;
    fill(
      this.#el.header,
      h("h1", null, escapeControl(current.alias)),
      h("span", { class: statusClass(word), "data-run-status": word }, word),
      current.title ? h("span", { class: "title" }, escapeControl(current.title)) : null,
      h(
        "span",
        { class: "dim" },
        `${current.model ? `model ${current.model}` : "no model"} · ${current.mode} · turn ${current.turn}${spent ? ` · ${spent}` : ""} · created `,
        since(current.createdAt),
        " ago",
      ),
      h("span", { class: "spacer" }),
      isOpen(current.status) && may(this.#page, "person") ? abort : null,
      current.status === RUN.paused && current.paused ? budgetCard(this.#page, { alias: current.alias, paused: current.paused }, () => this.#page.rpc) : null,
    );
  }

  /** The run as the server has it now (its spend, its pause), and the header drawn again. */
  async refreshRun(): Promise<void> {
    const rpc = this.#page.rpc;
    const run = this.#run;
    if (!rpc || !run) return;
    const got = await rpc.call("run/get", { run: run.alias });
    if (this.#run?.alias !== run.alias) return;
    this.#run = got.run;
    this.#usage = got.usage;
    this.#host.runs.set(got.run.alias, got.run);
    this.renderHeader();
  }

  renderPrompt(): void {
    const run = this.#run;
    if (!run) return;
    if (!run.model) {
      fill(this.#el.prompt, h("p", { class: "dim" }, "This run has no model: it is fed by hand, with proposals from clients."));
      return;
    }
    // A viewer reads runs; it does not prompt them.
    if (!may(this.#page, "agent")) {
      fill(this.#el.prompt);
      return;
    }
    if (this.#el.prompt.querySelector("textarea")) return;
    const text = h("textarea", { rows: 2, placeholder: "Prompt this run (Ctrl+Enter to send)", "aria-label": "prompt", maxlength: 100_000 });
    const send = h("button", { type: "submit" }, "Send");
    const submit = (event: Event) => {
      event.preventDefault();
      const prompt = text.value.trim();
      if (!prompt) return;
      void act(this.#page, send, "Prompt", async () => {
        // No deadline: a prompt (or a budget raised) is not sent twice because its answer was slow (session.ts).
        const reply = await this.#page.rpc!.call("run/prompt", { run: run.alias, prompt }, { timeoutMs: 0 });
        text.value = "";
        // Whoever prompts wants the answer: the conversation goes to its end, and follows it until scrolled away.
        this.#follow = true;
        const box = this.#el.conversation;
        box.scrollTop = box.scrollHeight;
        if (reply.queued > 1) this.#page.toast(`Queued as loop ${reply.loop} (${reply.queued - 1} before it)`);
      });
    };
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit(event);
    });
    this.#el.prompt.onsubmit = submit;
    fill(this.#el.prompt, text, send);
  }

  #renderConversation(): void {
    const box = this.#el.conversation;
    const run = this.#run;
    if (!run) return;
    const pinned = this.#pinned();
    if (!run.model && this.#messages.length === 0) {
      fill(box, h("p", { class: "dim pad" }, "No conversation: commands reach this run as proposals."));
      return;
    }
    const context = {
      producers: new Map(this.#producers.map((p) => [p.path, p])),
      tools: this.#tools,
      producerHref: (path: string) => routeHash({ ...this.#page.route, producer: path }),
      calls: new Map(this.#messages.flatMap((m) => m.toolCalls.map((c) => [c.id, callWords(c)] as const))),
    };
    const items = this.#messages.map((m) => messageView(m, context));
    fill(box, ...items, this.#el.live);
    this.#renderLive();
    if (pinned) box.scrollTop = box.scrollHeight;
  }

  /** Whether the conversation follows its end: it is scrolled to it, or a prompt was just sent from this page. */
  #pinned(): boolean {
    const box = this.#el.conversation;
    return this.#follow || box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }

  #renderLive(): void {
    const text = [...this.#live.values()].join("");
    const box = this.#el.conversation;
    // Measured before the streaming reply shows: once shown it is below the end, and the box would not follow it.
    const pinned = this.#pinned();
    this.#el.live.hidden = text.length === 0;
    fill(this.#el.live, h("span", { class: "who" }, "model (streaming)"), h("div", { class: "text" }, text));
    if (pinned) box.scrollTop = box.scrollHeight;
  }

  renderProducers(): void {
    if (!this.#run) return;
    if (this.#producers.length === 0) {
      fill(this.#el.producers, h("p", { class: "dim pad" }, "No commands yet."));
      return;
    }
    const shown = this.#page.route.producer;
    fill(
      this.#el.producers,
      producerTable(
        this.#producers,
        shown,
        (path) => this.#page.go({ producer: path }),
        (path, channel) => (path === this.#page.route.producer ? this.producer.received(channel) : 0),
      ),
    );
  }
}
