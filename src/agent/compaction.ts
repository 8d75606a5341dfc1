/**
 * Runs that outlast their context window: how big a request is, when to compact, which older messages a summary
 * replaces, and what the model is asked and told. The conversation itself stays stored whole (run/history, the
 * page, the model's `grep` on conversation://); only the requests shrink.
 */
import type { ChatMessage, ToolSpec } from "../model/provider.js";

/** Characters per token the estimate assumes: below what tokenizers average for English and code, so it errs high. */
const CHARS_PER_TOKEN = 3;
/** A request past this share of the window is compacted before it is sent (room for the reply and the next results). */
export const COMPACT_AT = 0.7;
/** The recent messages kept as they are: at most this share of the window. */
const KEEP_SHARE = 0.25;
/** The transcript the model summarises: at most this share of the window (older parts clipped). */
const SUMMARISE_SHARE = 0.55;

/** The path the model's grep reads the whole stored conversation at. */
export const CONVERSATION_PATH = "conversation://";

export const estimateTokens = (messages: readonly ChatMessage[], tools: readonly ToolSpec[] = []) =>
  Math.ceil((JSON.stringify(messages).length + JSON.stringify(tools).length) / CHARS_PER_TOKEN);

/** A message of the context with its stored id. */
export interface Held {
  id: number;
  message: ChatMessage;
}

/**
 * Where to cut: the index of the first message kept. Everything from index 1 (after the system prompt) up to it is
 * summarised. The kept part starts at a user message or a model reply (never at a tool result whose call would
 * be summarised away), holds the newest messages up to KEEP_SHARE of the window, and at least the newest reply;
 * undefined when there is nothing older to summarise.
 */
export function cutPoint(held: readonly Held[], windowTokens: number): number | undefined {
  const budget = windowTokens * KEEP_SHARE;
  let kept = 0;
  let cut: number | undefined;
  for (let i = held.length - 1; i >= 2; i--) {
    kept += estimateTokens([held[i]!.message]);
    const role = held[i]!.message.role;
    const boundary = role === "user" || role === "assistant";
    if (boundary && (kept <= budget || cut === undefined)) cut = i;
    if (kept > budget && cut !== undefined) break;
  }
  return cut;
}

/** One message as a line of the transcript the model summarises (a tool result clipped to `clip` characters). */
function line(message: ChatMessage, clip: number): string {
  const cut = (text: string) => (text.length > clip ? `${text.slice(0, clip)} […${text.length - clip} characters]` : text);
  switch (message.role) {
    case "system":
      return "";
    case "user":
      return `USER: ${cut(message.content)}`;
    case "tool":
      return `RESULT of ${message.tool_call_id}: ${cut(message.content)}`;
    case "assistant": {
      const calls = (message.tool_calls ?? []).map((c) => `CALL ${c.id} ${c.function.name} ${cut(c.function.arguments)}`);
      return [message.content ? `ASSISTANT: ${cut(message.content)}` : "", ...calls].filter(Boolean).join("\n");
    }
  }
}

/** The older conversation as text for the summary, within SUMMARISE_SHARE of the window (the oldest part clipped first). */
export function transcript(messages: readonly ChatMessage[], windowTokens: number): string {
  const budget = Math.floor(windowTokens * SUMMARISE_SHARE * CHARS_PER_TOKEN);
  for (const clip of [4000, 1000, 300]) {
    const text = messages
      .map((m) => line(m, clip))
      .filter(Boolean)
      .join("\n");
    if (text.length <= budget) return text;
  }
  const text = messages
    .map((m) => line(m, 300))
    .filter(Boolean)
    .join("\n");
  return `[… the oldest ${text.length - budget} characters left out …]\n${text.slice(text.length - budget)}`;
}

export const SUMMARY_INSTRUCTIONS = [
  "You are summarising the earlier part of a coding agent's conversation so that the agent can continue its task with this summary instead of the full text.",
  "Write a concise summary that keeps: the person's requests and constraints; what was done (commands run, their outcomes, exit codes); files, paths, names and values that matter; errors met and how they were handled; decisions made; and what remains to do.",
  "Write plain text, no preamble.",
].join(" ");

/** The message that stands for the summarised part in later requests. */
export function summaryText(summary: string, replaced: number): string {
  return [
    `[Spool compacted the conversation: the ${replaced} messages before this point were replaced by this summary to stay within the model's context window.`,
    `The whole conversation is stored; search it with the grep tool on path "${CONVERSATION_PATH}".]`,
    "",
    summary.trim(),
  ].join("\n");
}
