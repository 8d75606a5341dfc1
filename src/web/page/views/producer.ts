import { networkShown } from "../../../protocol/proposal-facts.js";
import { queueWords } from "../../../protocol/shown-state.js";
import { h } from "../dom.js";
import { bytes, duration, ENTRY, entryStatusWord, serverNow, statusClass } from "../format.js";
import { type Channel, isRunning, type Producer } from "../model.js";
import type { ChannelTerminal } from "../terminal.js";
import { shown } from "./common.js";

/**
 * How a finished producer ended, for the table's exit column: its exit code or signal, or for one that
 * was cancelled or aborted, that word and who cancelled it (the reason in the title).
 */
export function endOf(p: Producer): { text: string; by: string | null; title: string | null } {
  if (p.signal !== null) return { text: p.signal, by: null, title: null };
  if (p.exitCode !== null) return { text: String(p.exitCode), by: null, title: null };
  if (p.outcome === "cancelled" || p.outcome === "aborted") return { text: p.outcome, by: p.cancelledBy, title: p.reason };
  return { text: "", by: null, title: null };
}

/** A channel's name and size in the table; `received` is what its terminal holds when it is shown, ahead of the stored size while it streams. */
export function channelSize(c: Channel, received = 0): string {
  return `${c.name} ${bytes(Math.max(c.bytes, received))}`;
}

/**
 * The run's producers as a table: status, command, exit code or signal (or how it was stopped),
 * duration, channel sizes. `received(path, channel)`: the bytes a shown terminal holds of a channel.
 */
export function producerTable(
  producers: Producer[],
  selected: string | null,
  open: (path: string) => void,
  received: (path: string, channel: number) => number = () => 0,
  now = serverNow(),
): HTMLElement {
  const rows = producers.map((p) => {
    const end = endOf(p);
    const sizes: (Node | string)[] = [];
    for (const c of p.channels) {
      if (sizes.length > 0) sizes.push(" · ");
      sizes.push(h("span", { class: "size", "data-channel": c.channel }, channelSize(c, received(p.path, c.channel))));
    }
    const row = h(
      "tr",
      { class: p.path === selected ? "selected" : "", "data-producer": p.path, tabindex: 0 },
      h("td", null, h("span", { class: statusClass(p.state) }, p.state)),
      h("td", { class: "cmd" }, shown(p.command || p.path)),
      // Who cancelled it goes under the word, in small type: a long name never squeezes the command.
      h("td", { class: "exit", title: end.title }, shown(end.text), end.by !== null ? h("span", { class: "by" }, " by ", shown(end.by)) : null),
      timeCell(p, now),
      h("td", { class: "dim sizes" }, ...sizes),
    );
    row.addEventListener("click", () => open(p.path));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") open(p.path);
    });
    return row;
  });
  const head = h("tr", null, h("th", null, "status"), h("th", null, "command"), h("th", null, "exit"), h("th", null, "time"), h("th", null, "output"));
  return h("table", null, h("thead", null, head), h("tbody", null, ...rows));
}

/**
 * The table's time column: how long a finished command took, or for one running since a known time, how long it
 * has run so far since it was accepted (kept current by the page: `data-started`).
 */
function timeCell(p: Producer, now: number): HTMLElement {
  if (p.durationMs !== null) return h("td", { class: "time" }, duration(p.durationMs));
  if (p.acceptedAt === null || !isRunning(p)) return h("td", { class: "time" });
  return h("td", { class: "time running", "data-started": p.acceptedAt, title: "running for" }, elapsed(now - p.acceptedAt));
}

/** A running command's time so far, to the second: "12s", "3m 20s", "1h 5m". */
export function elapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  return duration(s * 1000);
}

/** What is known of one producer: its command, then status, exit code, signal, reason, duration, runner, process, cwd, network. */
export function producerFacts(producer: Producer, cancel: HTMLElement | null): HTMLElement[] {
  const p = producer;
  const where = p.process ? processPlace(p.process) : null;
  const facts: [string, Node | string | null][] = [
    ["status", h("span", { class: statusClass(p.state), "data-producer-status": p.state }, p.state)],
    ["queue", p.queue ? h("span", { "data-queue": p.queue.pool }, shown(queueWords(p.queue, serverNow()))) : null],
    ["exit code", p.exitCode !== null ? String(p.exitCode) : null],
    ["signal", p.signal],
    ["cancelled by", p.cancelledBy !== null ? shown(p.cancelledBy) : null],
    ["reason", p.reason !== null ? shown(p.reason) : null],
    ["duration", p.durationMs !== null ? duration(p.durationMs) : null],
    ["runner", p.runner !== null ? shown(p.runner) : null],
    ["process", where],
    ["cwd", p.cwd !== null ? shown(p.cwd) : "project root"],
    // Where it could go, and with an allowlist where it went (the words every client uses).
    ["network", h("span", { "data-network": p.network ?? "" }, networkShown(p))],
  ];
  return [
    h("div", { class: "detail-title" }, h("pre", { class: "command" }, "$ ", shown(p.command)), isRunning(p) ? cancel : null),
    h("dl", { class: "facts inline" }, ...facts.filter(([, v]) => v !== null).map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v)))),
  ];
}

/** A Docker container's id, 64 hex digits: shown as its first 12, as `docker ps` does. */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/**
 * Where a producer runs, on one line: backend, host, container, pid. A container's 64-hex id is shortened to 12
 * (the whole id in its title, to copy), so it never wraps over two lines.
 */
function processPlace(place: NonNullable<Producer["process"]>): HTMLElement | null {
  const parts: (Node | string)[] = [];
  const add = (part: Node | string | null) => {
    if (part === null || part === "") return;
    if (parts.length > 0) parts.push(" · ");
    parts.push(typeof part === "string" ? shown(part) : part);
  };
  add(place.backend);
  add(place.host);
  const container = place.container;
  add(
    container && CONTAINER_ID.test(container)
      ? h("span", { class: "container-id", title: container, "data-container": container }, container.slice(0, 12))
      : container,
  );
  add(place.pid !== null ? `pid ${place.pid}` : null);
  return parts.length > 0 ? h("span", { class: "process-place" }, ...parts) : null;
}

/** Whether what is typed into a channel's terminal goes to the command: `live`, or why it no longer does. */
export type InputState = { live: true } | { live: false; reason: string };

/** Points a pane's live / whole toggle at the mode it switches to (the same button is kept across re-renders). */
export function setToggle(button: HTMLButtonElement, terminal: ChannelTerminal): HTMLButtonElement {
  // Live skips what the browser cannot draw in time; whole draws every byte, however long it takes.
  const live = terminal.mode !== "whole";
  button.className = "quiet small";
  button.dataset.action = live ? "whole" : "live";
  button.title = live ? "draw every byte from the start, however long it takes" : "follow the end, skipping what cannot be drawn in time";
  button.textContent = live ? "whole output" : "live view";
  return button;
}

/** A channel pane's heading: name, size, lines, status, what was skipped, whether typing goes to the command, and the live / whole toggle. */
export function channelHead(
  c: Channel,
  terminal: ChannelTerminal | undefined,
  endedStatus: number | undefined,
  toggle: HTMLButtonElement | null,
  input: InputState | null = null,
): (Node | string | null)[] {
  const status = endedStatus ?? c.status;
  const size = Math.max(c.bytes, terminal?.received ?? 0);
  const button = terminal && toggle ? setToggle(toggle, terminal) : null;
  return [
    h("strong", null, c.name),
    " ",
    h("span", { class: "size" }, bytes(size)),
    // The line count is the stored one: shown once the channel is finished, when it no longer moves.
    c.lines && status !== ENTRY.streaming ? ` · ${c.lines} line${c.lines === 1 ? "" : "s"}` : "",
    " ",
    h("span", { class: statusClass(entryStatusWord(status)) }, entryStatusWord(status)),
    terminal && terminal.notDrawn > 0
      ? h(
          "span",
          { class: "dim", "data-not-drawn": terminal.notDrawn },
          ` · from near its end (${bytes(terminal.notDrawn)} before it): whole output draws it all`,
        )
      : null,
    terminal && terminal.skipped > 0 ? h("span", { class: "dim" }, ` · ${bytes(terminal.skipped)} skipped to keep up`) : null,
    terminal?.mode === "whole" ? h("span", { class: "dim" }, terminal.paused ? " · whole output, catching up …" : " · whole output") : null,
    input?.live
      ? h(
          "span",
          {
            class: "input-hint",
            "data-input-hint": "live",
            title: "click the output, then type: keys (Ctrl+C too) and this terminal's size go to the command",
          },
          "typing goes to the command",
        )
      : null,
    input && !input.live ? h("span", { class: "input-hint closed", "data-input-hint": "closed" }, shown(input.reason)) : null,
    button,
  ];
}
