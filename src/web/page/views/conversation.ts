import { compactionWords } from "../../../protocol/agent-words.js";
import { h } from "../dom.js";
import { entryStatusWord, escapeControl, statusClass } from "../format.js";
import type { Message, Producer, ToolNotice } from "../model.js";
import { shown, since } from "./common.js";

export interface ConversationContext {
  /** The run's producers by log path, for the status of the calls that made them. */
  producers: Map<string, Producer>;
  /** What run/tool said last about each call. */
  tools: Map<string, ToolNotice>;
  /** The page's link to a producer's output. */
  producerHref(path: string): string;
  /** What each tool call of the conversation was, by its id, as a person reads it (`sh: make test`). */
  calls?: Map<string, string>;
}

/** A tool call as a person reads it: the tool, and its command or path when it has one. */
export function callWords(c: { tool: string; arguments: Record<string, unknown> }): string {
  const what = c.arguments.command ?? c.arguments.path ?? c.arguments.summary;
  return typeof what === "string" ? `${c.tool}: ${what.length > 80 ? `${what.slice(0, 80)}…` : what}` : c.tool;
}

/** One message of a run's conversation: a prompt, the model's text and tool calls, or a call's answer. */
export function messageView(m: Message, context: ConversationContext): HTMLElement {
  if (m.compaction) {
    // The summary the model goes on from, under a line that says what happened; the messages it replaced stay above.
    return h(
      "details",
      { class: "msg compaction" },
      h("summary", null, compactionWords(m.compaction), " ", since(m.createdAt)),
      h("div", { class: "text" }, m.text ?? ""),
    );
  }
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
      // The call it answers as a person reads it, never the model's internal call id.
      h("summary", null, "answer to ", shown((m.toolCallId && context.calls?.get(m.toolCallId)) || "a tool call"), " ", since(m.createdAt)),
      h("pre", null, escapeControl(m.text ?? "")),
    );
  }
  const calls = m.toolCalls.map((c) => {
    const live = context.tools.get(c.id);
    const path = c.path ?? live?.path ?? null;
    const producer = path ? context.producers.get(path) : undefined;
    const word = producer ? producer.state : (live?.status ?? (c.status !== null ? entryStatusWord(c.status) : ""));
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
      path && producer ? h("a", { href: context.producerHref(path), class: "path" }, "output") : null,
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
