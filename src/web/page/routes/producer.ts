import type { SpoolClient } from "../../../client/spool-client.js";
import type { ResultOf } from "../../../protocol/methods/index.js";
import type { SpoolNotifications } from "../../../protocol/notifications.js";
import { act, KeptButton, may, message, type PageContext } from "../context.js";
import { fill, h } from "../dom.js";
import { OutputFind } from "../find.js";
import { bytes, ENTRY } from "../format.js";
import { TerminalInput } from "../input.js";
import { type Channel, isRunning, type Producer, type Run } from "../model.js";
import { ChannelTerminal, type TerminalMode } from "../terminal.js";
import { channelHead, channelSize, type InputState, producerFacts } from "../views/producer.js";

/** A live terminal that fell behind goes on from this many chunks before the end (a runner sends at most 64 KiB a chunk). */
const JUMP_BACK_CHUNKS = 16;
/**
 * A finished channel bigger than this opens live from about its last TAIL_BYTES: replayed from the start at the
 * network's speed, live mode would drop most of it as "skipped to keep up" (it fell behind nothing), and the
 * terminal keeps only its last lines anyway. "whole output" draws every byte from the start.
 */
const TAIL_FROM = 2 * 1024 * 1024;
const TAIL_BYTES = 512 * 1024;
const bigFinished = (c: Channel) => c.status !== ENTRY.streaming && c.bytes > TAIL_FROM;

/** What the producer view reads of the run view that holds it. */
export interface ProducerHost {
  /** The run shown. */
  run(): Run | null;
  /** The run's producers as last read. */
  producers(): Producer[];
}

/**
 * The chosen producer (#/project/run/path): its facts and actions, and a terminal per channel, subscribed on the
 * page's data connection from the start (or from where it was), live or whole, taking typed input when the
 * producer has a terminal and runs.
 */
export class ProducerView {
  /** Where the producer is drawn (the run view places it). */
  readonly element = h("div", { class: "producer-detail" });
  readonly #page: PageContext;
  readonly #host: ProducerHost;
  // The chosen producer's terminals, by channel, and their subscriptions.
  #terminals = new Map<number, ChannelTerminal>();
  #subscriptions = new Map<string, ChannelTerminal>();
  #ended = new Map<number, SpoolNotifications["stream/end"]>();
  #detailFor: string | null = null;
  /** The kept cancel button, for the producer shown. */
  readonly #cancel = new KeptButton("cancel", "Cancel");
  /** The shown producer's panes' live / whole toggles, by channel (see #toggleButton). */
  #toggles = new Map<number, HTMLButtonElement>();
  /** What is typed into the chosen producer's terminal, when it has one and runs; its state for the pane's heading. */
  #input: TerminalInput | null = null;
  #inputState: InputState | null = null;
  /** The find box over the shown producer's stored output, made again for each producer. */
  #find: OutputFind | null = null;

  constructor(page: PageContext, host: ProducerHost) {
    this.#page = page;
    this.#host = host;
  }

  // ── the data connection's notifications ────────────────────────────────

  onData(d: SpoolNotifications["stream/data"]): void {
    this.#subscriptions.get(d.subscription)?.push(d.seq, d.chunk);
  }

  onEnd(e: SpoolNotifications["stream/end"]): void {
    const terminal = this.#subscriptions.get(e.subscription);
    if (!terminal) return;
    this.#subscriptions.delete(e.subscription);
    this.#ended.set(terminal.info.channel, e);
    this.renderMeta();
  }

  onLagged(l: SpoolNotifications["stream/lagged"]): void {
    const terminal = this.#subscriptions.get(l.subscription);
    if (!terminal) return;
    this.#subscriptions.delete(l.subscription);
    // Live: replaying the backlog would keep it behind; it goes on from the last few chunks instead. Whole: from where it was.
    void (terminal.mode === "live" ? this.#jumpToEnd(terminal) : this.#subscribe(terminal));
  }

  /** The connections dropped: subscriptions die with them; the terminals stay, to resume after their last seq. */
  lost(): void {
    this.#subscriptions.clear();
    for (const terminal of this.#terminals.values()) if (!terminal.paused) terminal.note("[connection lost; reconnecting …]");
  }

  /** Back after a drop: terminals whose channel had not ended subscribe again; input whose answer the drop lost goes again, under the same seq. */
  resume(): void {
    for (const terminal of this.#terminals.values()) if (!this.#ended.has(terminal.info.channel)) void this.#subscribe(terminal);
    this.#input?.resume();
  }

  /** The bytes the shown terminal of `channel` received (0 when none is shown). */
  received(channel: number): number {
    return this.#terminals.get(channel)?.received ?? 0;
  }

  teardown(): void {
    const rpc = this.#page.data;
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
    this.#find = null;
  }

  selected(): Producer | undefined {
    return this.#host.producers().find((p) => p.path === this.#page.route.producer);
  }

  // ── rendering ───────────────────────────────────────────────────────────

  /** Shows the chosen producer: facts and actions, and a terminal per channel subscribed from the start (or from where it was). */
  render(): void {
    const producer = this.selected();
    const key = producer ? `${producer.path}\u0000${producer.channels.length}` : null;
    if (key !== this.#detailFor) {
      if (this.#detailFor?.split("\u0000")[0] !== producer?.path) this.teardown();
      this.#detailFor = key;
      if (!producer) {
        fill(this.element, this.#host.producers().length > 0 ? h("p", { class: "dim pad" }, "Choose a command to see its output.") : null);
        return;
      }
      // Panes are made again (a channel appeared): the terminal being typed into keeps the keyboard.
      const focused = [...this.#terminals.values()].find((t) => t.element.contains(document.activeElement));
      const panes: HTMLElement[] = [];
      for (const c of producer.channels) {
        const channel = c.channel;
        const terminal = this.#terminals.get(channel) ?? this.#openTerminal(channel, c.name, "live", bigFinished(c));
        panes.push(
          h(
            "div",
            { class: `pane channel-${channel === 2 ? "stderr" : channel === 1 ? "stdout" : "other"}`, "data-pane": channel },
            h("div", { class: "pane-head", "data-head": channel }),
            terminal.element,
          ),
        );
      }
      this.#find ??= this.#findBox();
      fill(this.element, h("div", { class: "detail-meta" }), this.#find.element, ...panes);
      focused?.focus();
    }
    this.renderMeta();
  }

  /** The producer's facts and its panes' headings, drawn again as they change (the panes themselves stay). */
  renderMeta(): void {
    const producer = this.selected();
    const meta = this.element.querySelector(".detail-meta");
    const run = this.#host.run()?.alias;
    if (!producer || !meta || run === undefined) return;
    this.#syncInput(producer);
    const cancel = this.#cancel.for(`cancel\u0000${run}\u0000${producer.path}`, (button) =>
      act(this.#page, button, "Cancel", () => this.#page.rpc!.call("stream/cancel", { run, path: producer.path, reason: "cancelled from the web view" })),
    );
    // A viewer cannot cancel: no button for it.
    fill(meta, ...producerFacts(producer, may(this.#page, "agent") ? cancel : null));
    for (const c of producer.channels) {
      const channel = c.channel;
      const head = this.element.querySelector(`[data-head="${channel}"]`);
      const terminal = this.#terminals.get(channel);
      if (!head) continue;
      // A channel that ended with nothing in it is one line ("no output"), not an empty terminal: drawn so as its
      // end comes (nothing stored under any seq), in the drawing that says it ended, not once the entries are read again.
      const ended = this.#ended.get(channel);
      const empty = ended ? ended.lastSeq === 0 : c.status !== ENTRY.streaming && c.bytes === 0 && (terminal?.received ?? 0) === 0;
      head.parentElement?.classList.toggle("empty", empty);
      fill(head, ...channelHead(c, terminal, this.#ended.get(channel)?.status, this.#toggleButton(channel), channel === 1 ? this.#inputState : null));
    }
  }

  /**
   * The channel sizes in the pane headings and in the producers table's `row` (the shown producer's) follow
   * what the terminals received.
   */
  refreshSizes(row: Element | null): void {
    const producer = this.selected();
    for (const [channel, terminal] of this.#terminals) {
      const entry = producer?.channels.find((c) => c.channel === channel);
      const size = this.element.querySelector(`[data-head="${channel}"] .size`);
      // The channel's size as stored, or what the terminal received when that is ahead: never less (whole output catching up).
      const shown = bytes(Math.max(entry?.bytes ?? 0, terminal.received));
      if (size && terminal.received > 0 && size.textContent !== shown && this.#ended.get(channel) === undefined) size.textContent = shown;
      const cell = row?.querySelector(`.size[data-channel="${channel}"]`);
      if (entry && cell) {
        const text = channelSize(entry, terminal.received);
        if (cell.textContent !== text) cell.textContent = text;
      }
    }
  }

  /** A find box over the shown producer's output: a match scrolls its channel's terminal to it. */
  #findBox(): OutputFind {
    return new OutputFind(
      this.#page,
      () => {
        const run = this.#host.run()?.alias;
        const path = this.#page.route.producer;
        return run !== undefined && path ? { run, path } : null;
      },
      (channelPath, line) => {
        const channel = this.selected()?.channels.find((c) => c.path === channelPath)?.channel;
        const terminal = channel === undefined ? undefined : this.#terminals.get(channel);
        if (!terminal?.reveal(line)) return false;
        terminal.element.scrollIntoView({ block: "nearest" });
        return true;
      },
    );
  }

  /** A pane's live / whole toggle, kept across re-renders like the cancel button (see KeptButton). */
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
   * A producer proposed with a terminal (`tty`) takes what is typed into its output's terminal (channel 1,
   * where a terminal's output all goes) while it runs; any other producer's terminals stay read-only.
   */
  #syncInput(producer: Producer): void {
    const run = this.#host.run();
    const path = producer.path;
    const terminal = this.#terminals.get(1);
    // A viewer sends no input: its terminals only show.
    if (!run || producer.tty === null || !may(this.#page, "agent")) return;
    const running = isRunning(producer) && !this.#ended.has(1);
    if (!this.#input) {
      if (!running || !terminal) return;
      const input: TerminalInput = new TerminalInput(run.alias, path, () => this.#page.rpc, {
        error: (text) => this.#page.toast(`${path}: ${text}`, "error"),
        closed: (reason) => {
          if (this.#input !== input) return;
          this.#inputState = { live: false, reason };
          this.renderMeta();
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

  // ── terminals and their subscriptions ──────────────────────────────────

  /** `fromEnd`: a big finished channel, shown live from near its end (see TAIL_FROM). */
  #openTerminal(channel: number, name: string, mode: TerminalMode, fromEnd = false): ChannelTerminal {
    const terminal: ChannelTerminal = new ChannelTerminal({ channel, name }, mode, {
      pause: (paused) => {
        if (paused) this.#pause(terminal);
        else void this.#subscribe(terminal);
      },
      skipped: () => this.renderMeta(),
    });
    this.#terminals.set(channel, terminal);
    void (fromEnd ? this.#tail(terminal) : this.#subscribe(terminal));
    return terminal;
  }

  /** Shows a channel again from its first byte, in the other mode. */
  #reopen(channel: number, mode: TerminalMode): void {
    const old = this.#terminals.get(channel);
    if (!old) return;
    this.#pause(old);
    this.#ended.delete(channel);
    // Back to live on a big finished channel: from near its end again, as when it was first opened.
    const c = this.selected()?.channels.find((ch) => ch.channel === channel);
    const fresh = this.#openTerminal(channel, old.info.name, mode, mode === "live" && c !== undefined && bigFinished(c));
    old.element.replaceWith(fresh.element);
    old.dispose();
    this.renderMeta();
  }

  /** Subscribes a terminal's channel after the last seq it holds. */
  async #subscribe(terminal: ChannelTerminal): Promise<void> {
    const got = await this.#subscribeAfter(terminal, terminal.lastSeq);
    if (!got) return;
    const { subscription } = got.reply;
    if (this.#terminals.get(terminal.info.channel) !== terminal) {
      void got.rpc.call("stream/unsubscribe", { subscription }).catch(() => {});
      return;
    }
    this.#subscriptions.set(subscription, terminal);
  }

  /** A live terminal the server dropped as lagging: it learns where the channel ends, then subscribes from a few chunks before. */
  async #jumpToEnd(terminal: ChannelTerminal): Promise<void> {
    // Subscribing after the end replays nothing; its answer says where the end is (seq and bytes, read together).
    const probe = await this.#subscribeAfter(terminal, Number.MAX_SAFE_INTEGER);
    if (probe) {
      void probe.rpc.call("stream/unsubscribe", { subscription: probe.reply.subscription }).catch(() => {});
      const end = probe.reply.channels[0];
      if (end) terminal.jump(Math.max(terminal.lastSeq, end.lastSeq - JUMP_BACK_CHUNKS), end.lastSeq, end.bytes);
    }
    await this.#subscribe(terminal);
  }

  /** A big finished channel: learns where it ends, then subscribes from about TAIL_BYTES before (by its chunks' mean size). */
  async #tail(terminal: ChannelTerminal): Promise<void> {
    const probe = await this.#subscribeAfter(terminal, Number.MAX_SAFE_INTEGER);
    if (probe) {
      void probe.rpc.call("stream/unsubscribe", { subscription: probe.reply.subscription }).catch(() => {});
      const end = probe.reply.channels[0];
      if (end && end.lastSeq > 0 && end.bytes > TAIL_FROM) {
        const chunks = Math.max(JUMP_BACK_CHUNKS, Math.ceil(TAIL_BYTES / (end.bytes / end.lastSeq)));
        terminal.tail(Math.max(0, end.lastSeq - chunks), end.lastSeq, end.bytes);
      }
    }
    await this.#subscribe(terminal);
  }

  /** `stream/subscribe` to the terminal's channel after `after` while the terminal is shown; null when it is not, when not connected, or on a failure (shown). */
  async #subscribeAfter(terminal: ChannelTerminal, after: number): Promise<{ rpc: SpoolClient; reply: ResultOf<"stream/subscribe"> } | null> {
    const rpc = this.#page.data;
    const run = this.#host.run();
    const path = this.#page.route.producer;
    if (!rpc || !run || !path || this.#terminals.get(terminal.info.channel) !== terminal) return null;
    try {
      return {
        rpc,
        reply: await rpc.call("stream/subscribe", { run: run.alias, path, channel: terminal.info.channel, after, encoding: "base64" }, { timeoutMs: 0 }),
      };
    } catch (error) {
      if (!rpc.closed) this.#page.toast(`Output of ${path}: ${message(error)}`, "error");
      return null;
    }
  }

  /** The terminal is too far behind: stop its subscription until it has drawn what it holds. */
  #pause(terminal: ChannelTerminal): void {
    for (const [subscription, t] of this.#subscriptions) {
      if (t !== terminal) continue;
      this.#subscriptions.delete(subscription);
      void this.#page.data?.call("stream/unsubscribe", { subscription }).catch(() => {});
    }
    this.renderMeta();
  }
}
