import { h } from "../dom.js";
import { bytes, duration, ENTRY, entryStatusWord, statusClass } from "../format.js";
import { channelName, type Entry, type Producer, producerState } from "../model.js";
import type { ChannelTerminal } from "../terminal.js";
import { shown } from "./common.js";

/**
 * How a finished producer ended, for the table's exit column: its exit code or signal, or for one that
 * was cancelled or aborted, that word and who cancelled it (the reason in the title).
 */
export function endOf(p: Producer): { text: string; title: string | null } {
  const a = p.log.attributes;
  if (a.signal) return { text: String(a.signal), title: null };
  if (a.exit_code !== undefined && a.exit_code !== null) return { text: String(a.exit_code), title: null };
  if (a.outcome === "cancelled" || a.outcome === "aborted") {
    const by = typeof a.cancelledBy === "string" ? ` by ${a.cancelledBy}` : "";
    return { text: `${a.outcome}${by}`, title: typeof a.reason === "string" ? a.reason : null };
  }
  return { text: "", title: null };
}

/** A channel's name and size in the table; `received` is what its terminal holds when it is shown, ahead of the stored size while it streams. */
export function channelSize(c: Entry, received = 0): string {
  return `${channelName(c)} ${bytes(Math.max(c.bytes, received))}`;
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
): HTMLElement {
  const rows = producers.map((p) => {
    const state = producerState(p);
    const a = p.log.attributes;
    const end = endOf(p);
    const sizes: (Node | string)[] = [];
    for (const c of p.channels) {
      const channel = Number(c.attributes.channel);
      if (sizes.length > 0) sizes.push(" · ");
      sizes.push(h("span", { class: "size", "data-channel": channel }, channelSize(c, received(p.log.path, channel))));
    }
    const row = h(
      "tr",
      { class: p.log.path === selected ? "selected" : "", "data-producer": p.log.path, tabindex: 0 },
      h("td", null, h("span", { class: statusClass(state.word) }, state.word)),
      h("td", { class: "cmd" }, shown(String(a.command ?? p.log.path))),
      h("td", { class: "exit", title: end.title }, shown(end.text)),
      h("td", { class: "time" }, typeof a.duration === "number" ? duration(a.duration) : ""),
      h("td", { class: "dim sizes" }, ...sizes),
    );
    row.addEventListener("click", () => open(p.log.path));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") open(p.log.path);
    });
    return row;
  });
  const head = h("tr", null, h("th", null, "status"), h("th", null, "command"), h("th", null, "exit"), h("th", null, "time"), h("th", null, "output"));
  return h("table", null, h("thead", null, head), h("tbody", null, ...rows));
}

/** What is known of one producer: its command, then status, exit code, signal, reason, duration, runner, process, cwd. */
export function producerFacts(producer: Producer, cancel: HTMLElement | null): HTMLElement[] {
  const a = producer.log.attributes;
  const state = producerState(producer);
  const process = a.process && typeof a.process === "object" ? (a.process as Record<string, unknown>) : null;
  const where = process ? [process.backend, process.host, process.container, process.pid ? `pid ${process.pid}` : null].filter(Boolean).join(" · ") : null;
  const facts: [string, Node | string | null][] = [
    ["status", h("span", { class: statusClass(state.word), "data-producer-status": state.word }, state.word)],
    ["exit code", a.exit_code !== undefined && a.exit_code !== null ? String(a.exit_code) : null],
    ["signal", a.signal ? String(a.signal) : null],
    ["cancelled by", typeof a.cancelledBy === "string" ? shown(a.cancelledBy) : null],
    ["reason", typeof a.reason === "string" ? shown(a.reason) : null],
    ["duration", typeof a.duration === "number" ? duration(a.duration) : null],
    ["runner", typeof a.runner === "string" ? shown(a.runner) : null],
    ["process", where ? shown(where) : null],
    ["cwd", typeof a.cwd === "string" && a.cwd ? shown(a.cwd) : "project root"],
  ];
  return [
    h("div", { class: "detail-title" }, h("pre", { class: "command" }, "$ ", shown(String(a.command ?? ""))), state.running ? cancel : null),
    h("dl", { class: "facts inline" }, ...facts.filter(([, v]) => v !== null).map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v)))),
  ];
}

/** Whether what is typed into a channel's terminal goes to the command: `live`, or why it no longer does. */
export type InputState = { live: true } | { live: false; reason: string };

/** A channel pane's heading: name, size, lines, status, what was skipped, whether typing goes to the command, and the live / whole toggle. */
export function channelHead(
  c: Entry,
  terminal: ChannelTerminal | undefined,
  endedStatus: number | undefined,
  toggle: () => void,
  input: InputState | null = null,
): (Node | string | null)[] {
  const status = endedStatus ?? c.status;
  const size = Math.max(c.bytes, terminal?.received ?? 0);
  // Live skips what the browser cannot draw in time; whole draws every byte, however long it takes.
  const live = terminal?.mode !== "whole";
  const button = terminal
    ? h(
        "button",
        {
          type: "button",
          class: "quiet small",
          "data-action": live ? "whole" : "live",
          title: live ? "draw every byte from the start, however long it takes" : "follow the end, skipping what cannot be drawn in time",
        },
        live ? "whole output" : "live view",
      )
    : null;
  button?.addEventListener("click", toggle);
  return [
    h("strong", null, channelName(c)),
    " ",
    h("span", { class: "size" }, bytes(size)),
    // The line count is the stored one: shown once the channel is finished, when it no longer moves.
    c.lines && status !== ENTRY.streaming ? ` · ${c.lines} lines` : "",
    " ",
    h("span", { class: statusClass(entryStatusWord(status)) }, entryStatusWord(status)),
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
