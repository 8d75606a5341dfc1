import type { ChatMessage } from "../model/provider.js";

/**
 * What Spool keeps beside a stored message (in `messages.body`, under
 * `spool`), never sent to the model server: the raw text of tool-call
 * arguments that were not a JSON object (the call itself is kept with "{}"),
 * whether a reply was cut at the token limit, and which of the user messages
 * are Spool's own notes.
 */
export interface Extras {
  spool?: {
    rawArguments?: Record<string, string>;
    truncated?: boolean;
    note?: "length" | "compaction";
    /** A compaction's summary message: which compaction, why, and what it replaced. */
    compaction?: { id: string; reason: "window" | "too long"; replaced: number; tokensBefore: number; tokensAfter: number };
  };
}
export type Stored = ChatMessage & Extras;
export type StoredAssistant = Extract<ChatMessage, { role: "assistant" }> & Extras;

/** Whether tool-call arguments are what servers accept back in the history: one JSON object. */
export function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** The history as the model server is sent it: Spool's extras left out, every tool call's arguments a JSON object (older runs may hold a bad one). */
export function toWire(messages: Stored[]): ChatMessage[] {
  return messages.map(({ spool: _extras, ...message }) => {
    if (message.role !== "assistant" || !message.tool_calls?.some((c) => !isJsonObject(c.function.arguments))) return message;
    return {
      ...message,
      tool_calls: message.tool_calls.map((c) => (isJsonObject(c.function.arguments) ? c : { ...c, function: { ...c.function, arguments: "{}" } })),
    };
  });
}
