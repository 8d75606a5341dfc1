import type { CallToolResult } from "@modelcontextprotocol/server";
import { escapeFormat } from "../../protocol/screen-text.js";
import { ENTRY, entryStatusWord } from "../../protocol/status.js";

/*
 * Small pieces of text `spool mcp` sends: the statuses as words, the newest lines of raw output for a
 * progress message, the keys `send_input` names, and tool results of text.
 */

/** Entry statuses (src/protocol/status.ts), named as this bridge uses them. */
export const STATUS = ENTRY;

/** The word for an entry status; a proposal "waits for a decision" (what the agent is told it waits on). */
export const statusWord = (status: number) => (status === ENTRY.proposed ? "waiting for a decision" : entryStatusWord(status));

/** Escape sequences and other controls a progress line must not carry (a terminal's colours, cursor moves). */
const SEQUENCES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/**
 * The newest complete-looking lines of some raw output, for a progress message: escape sequences removed,
 * a carriage return keeps what follows it (as a terminal would overwrite the line), blank lines skipped, format
 * controls (U+202E…) written as escapes.
 */
export function newestLines(raw: string, count = 3, maxChars = 400): string {
  const lines = escapeFormat(raw.replace(SEQUENCES, ""))
    .split("\n")
    .map((line) => {
      const parts = line.split("\r").filter((p) => p !== "");
      return (parts[parts.length - 1] ?? "").replace(CONTROLS, "").trimEnd();
    })
    .filter((line) => line.trim() !== "");
  const text = lines.slice(-count).join("\n");
  return text.length > maxChars ? `…${text.slice(-maxChars)}` : text;
}

/** The keys `send_input` understands, as the bytes a terminal sends for them. */
export const KEYS: Record<string, string> = {
  Enter: "\r",
  Tab: "\t",
  Escape: "\u001b",
  Backspace: "\u007f",
  Space: " ",
  Up: "\u001b[A",
  Down: "\u001b[B",
  Right: "\u001b[C",
  Left: "\u001b[D",
  Home: "\u001b[H",
  End: "\u001b[F",
  PageUp: "\u001b[5~",
  PageDown: "\u001b[6~",
  Delete: "\u001b[3~",
};

/** `Enter`, `Up`, `C-c` (Ctrl and a letter, or one of @[\]^_): the bytes, or null for a name that is none of them. */
export function keyBytes(name: string): string | null {
  const named = KEYS[name];
  if (named !== undefined) return named;
  const ctrl = /^C-(.)$/i.exec(name);
  if (!ctrl) return null;
  const c = ctrl[1]!.toUpperCase();
  const code = c.charCodeAt(0);
  if (code >= 0x40 && code <= 0x5f) return String.fromCharCode(code - 0x40);
  if (c === "?") return "\u007f";
  return null;
}

/** What the key names in `send_input`'s description list. */
export const KEY_NAMES = `${Object.keys(KEYS).join(", ")}, C-a … C-z (Ctrl and a letter; C-c interrupts, C-d ends input on a terminal)`;

/** A tool result of text. */
export const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] });

/** A tool error result (isError) of text: what the model reads, not a protocol error. */
export const failure = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }], isError: true });

/** An error's message, whatever was thrown. */
export const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** A tool call that cannot be done as asked: an error result (isError) with this message, not a protocol error. */
export class ToolFailure extends Error {}
