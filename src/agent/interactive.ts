import type { Core } from "../core/index.js";
import { ENTRY, entryStatusWord } from "../core/status.js";
import { channelFromRow, type EntryRow, lineCount, producerFromRow } from "../core/views.js";
import { renderTerminalText } from "../model/terminal.js";
import type { ControlSignal } from "../protocol/runner.js";
import { SpoolError } from "../rpc/errors.js";
import type { ToolContext } from "./tool-context.js";

/** The terminal a model's `sh` with `tty` gets. */
export const MODEL_TTY = { cols: 120, rows: 40 } as const;

/** Lines of new output one write, kill or jobs answer shows of a channel at most (the last ones). */
const NEW_LINES = 200;

/** After a write, output that has been quiet this long is taken as the command's answer. */
const QUIET_MS = 300;

/** What a write sends, in order: bytes, the end of the input, or a signal. */
export type WritePart = { kind: "bytes"; data: Buffer } | { kind: "eof" } | { kind: "signal"; signal: ControlSignal };

const NAMED: Record<string, string> = {
  Enter: "\r",
  Tab: "\t",
  Esc: "\u001b",
  Backspace: "\u007f",
  Up: "\u001b[A",
  Down: "\u001b[B",
  Right: "\u001b[C",
  Left: "\u001b[D",
};

const KEY = /<(C-[a-z\\]|Enter|Tab|Esc|Backspace|Up|Down|Left|Right)>/g;

/**
 * Splits a model's `write` input into what to send: text as it is, and named keys in angle brackets
 * (`<C-c>`, `<C-d>`, `<Enter>`, `<Tab>`, `<Esc>`, `<Up>`…); an input that is only a key name (`C-c`) is
 * that key. Under a terminal a key is its bytes (the terminal turns ^C into SIGINT, ^D into end of
 * file); through a pipe, which has no terminal to do that, C-c is SIGINT, C-\ SIGQUIT and C-d the end of
 * the input, and Enter is a newline.
 */
export function writeParts(input: string, tty: boolean): WritePart[] {
  const text = /^C-[a-z\\]$/.test(input) ? `<${input}>` : input;
  const parts: WritePart[] = [];
  const bytes = (data: string) => {
    if (data === "") return;
    const last = parts.at(-1);
    if (last?.kind === "bytes") last.data = Buffer.concat([last.data, Buffer.from(data)]);
    else parts.push({ kind: "bytes", data: Buffer.from(data) });
  };
  let at = 0;
  for (const match of text.matchAll(KEY)) {
    bytes(text.slice(at, match.index));
    at = match.index + match[0].length;
    const key = match[1]!;
    if (!tty && key === "C-c") parts.push({ kind: "signal", signal: "INT" });
    else if (!tty && key === "C-\\") parts.push({ kind: "signal", signal: "QUIT" });
    else if (!tty && key === "C-d") parts.push({ kind: "eof" });
    else if (!tty && key === "Enter") bytes("\n");
    else if (key.startsWith("C-")) bytes(String.fromCharCode(key === "C-\\" ? 28 : key.charCodeAt(2) - 96));
    else bytes(NAMED[key]!);
  }
  bytes(text.slice(at));
  return parts;
}

/** Why the model may not write to or kill commands here, or null when it may. */
export function inputRefusal(core: Core): string | null {
  return core.config.agent.modelInput === "off"
    ? 'error: this server does not let the model write to or kill running commands (modelInput is "off" in its config.json)'
    : null;
}

/** The log entry of a producer of this run, named by its log path or one of its channel paths. */
export async function producerOf(ctx: Pick<ToolContext, "core" | "run">, path: string): Promise<EntryRow | null> {
  const entry = await ctx.core.entries.find(ctx.run.id, path);
  if (!entry) return null;
  if (entry.scheme === "log") return entry;
  return entry.producer_id === null ? null : ((await ctx.core.entries.findById(entry.producer_id)) ?? null);
}

const outputChannels = (channels: EntryRow[]) => channels.filter((c) => (c.channel ?? 0) >= 1);
const running = (channels: EntryRow[]) => channels.some((c) => c.status === ENTRY.streaming);

/**
 * Waits until the producer ends, or its output has been quiet for a moment after something new came, or `ms` pass:
 * on the channels' events (a chunk, an end), reading the store only at an end and when it returns. `before`: the
 * channels as they were before the input went: output stored since (an answer that came before this wait began)
 * is something new already.
 */
export async function awaitAnswer(core: Core, log: EntryRow, ms: number, signal: AbortSignal, before: readonly EntryRow[] = []): Promise<EntryRow[]> {
  const deadline = Date.now() + ms;
  let channels = await core.entries.channels(log.id);
  let changedAt = grewSince(before, channels) ? Date.now() : 0;
  let stale = false;
  while (running(channels) && Date.now() < deadline && !signal.aborted) {
    const quietLeft = changedAt ? QUIET_MS - (Date.now() - changedAt) : Number.POSITIVE_INFINITY;
    if (quietLeft <= 0) break;
    // Output channels only: what was typed (channel 0) is not an answer.
    const change = await core.entries.nextChange(outputChannels(channels), Math.min(deadline - Date.now(), quietLeft), { signal }).changed;
    if (change === "data") {
      changedAt = Date.now();
      stale = true;
      continue;
    }
    if (change === null) break;
    channels = await core.entries.channels(log.id);
    stale = false;
  }
  return stale ? core.entries.channels(log.id) : channels;
}

/** Whether an output channel holds more bytes in `now` than it did in `before` (the same channel, by id). */
function grewSince(before: readonly EntryRow[], now: readonly EntryRow[]): boolean {
  const bytes = new Map(before.map((c) => [c.id, c.bytes]));
  return outputChannels([...now]).some((c) => bytes.has(c.id) && c.bytes > bytes.get(c.id)!);
}

/**
 * What a producer printed since the model last looked (its `modelSeen` attribute: complete lines per
 * channel), as a terminal shows it; the last line is shown again while it is unfinished (a prompt).
 * Marks it seen.
 */
export async function newOutput(ctx: Pick<ToolContext, "core" | "budgetTokens">, log: EntryRow, channels: EntryRow[]): Promise<string> {
  const seen = producerFromRow(log).modelSeen;
  const lines: string[] = [];
  const next: Record<string, number> = { ...seen };
  const budget = ctx.budgetTokens * 4;
  for (const channel of outputChannels(channels)) {
    const { name } = channelFromRow(channel);
    const total = lineCount(channel);
    const from = Math.min(seen[String(channel.channel)] ?? 0, channel.newlines);
    next[String(channel.channel)] = channel.newlines;
    if (channel.bytes === 0 || from >= total) {
      lines.push(`--- ${name} (${channel.path}): nothing new`);
      continue;
    }
    const start = Math.max(from, total - NEW_LINES);
    const read = await ctx.core.entries.readLines(channel.id, start, total - start, budget * 8);
    let text = (await renderTerminalText(read.data.toString("utf8"))).replace(/\n$/, "");
    if (text.length > budget) text = `[… cut to the last ${budget} characters; read more with get …]\n${text.slice(-budget)}`;
    const skipped = start > from ? ` (${start - from} earlier new lines left out; read them with get: {"path": "${channel.path}", "line": ${from + 1}})` : "";
    lines.push(`--- ${name} (${channel.path}): new since your last look, lines ${start + 1}-${total} of ${total}${skipped} ---`);
    lines.push(text);
  }
  await ctx.core.entries.setAttribute(log.id, "modelSeen", next);
  return lines.join("\n");
}

/** Marks everything a producer printed so far as seen by the model (it was just shown its output). */
export async function markSeen(core: Core, log: EntryRow, channels: EntryRow[]): Promise<void> {
  if (!running(channels)) return;
  await core.entries.setAttribute(log.id, "modelSeen", Object.fromEntries(outputChannels(channels).map((c) => [String(c.channel), c.newlines])));
}

/** An entry's status as the model reads it: in words ("still running", "done", "failed"…), never the protocol's number. */
export function statusText(status: number): string {
  if (status === ENTRY.streaming) return "still running";
  if (status === ENTRY.proposed) return "waiting for a person to accept or reject it";
  return entryStatusWord(status);
}

/** The status lines of a producer for write and kill answers. */
export function statusLines(log: EntryRow, channels: EntryRow[]): string[] {
  const open = running(channels);
  const first = outputChannels(channels)[0];
  const ended = first ? channelFromRow(first) : null;
  const lines = [`status: ${statusText(open ? ENTRY.streaming : (first?.status ?? log.status))}`, `log: ${log.path}`];
  if (!open && ended?.exitCode != null) lines.push(`exit code: ${ended.exitCode}`);
  if (!open && ended?.signal) lines.push(`signal: ${ended.signal}`);
  if (!open && ended?.reason) lines.push(`reason: ${ended.reason}`);
  return lines;
}

/** Sends a write's parts through the core (as any client's stream/input, eof, signal would); an error names what was not sent. */
export async function sendParts(ctx: Pick<ToolContext, "core" | "project" | "run">, log: EntryRow, parts: WritePart[]): Promise<string | null> {
  const target = { run: ctx.run.alias, path: log.path };
  const limit = ctx.core.config.limits.maxInputBytes;
  try {
    for (const part of parts) {
      if (part.kind === "signal") await ctx.core.controls.signal(ctx.project, target, part.signal);
      else if (part.kind === "eof") await ctx.core.controls.eof(ctx.project, target);
      else for (let at = 0; at < part.data.length; at += limit) await ctx.core.controls.input(ctx.project, target, part.data.subarray(at, at + limit));
    }
    return null;
  } catch (error) {
    if (error instanceof SpoolError) return `error: ${error.message}`;
    throw error;
  }
}

/** How a write reads in its answer: the text, escaped, and the keys it ended with. */
export function describeParts(parts: WritePart[]): string {
  return parts.map((p) => (p.kind === "bytes" ? JSON.stringify(p.data.toString("utf8")) : p.kind === "eof" ? "end of input" : `SIG${p.signal}`)).join(" + ");
}

/** "3m12s". */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** The run's producers that are still running, as the `jobs` tool lists them. */
export async function listJobs(ctx: Pick<ToolContext, "core" | "run">): Promise<string> {
  const open = await ctx.core.entries.list(ctx.run.id, { status: ENTRY.streaming, limit: 1000 });
  const ids = [...new Set(open.map((c) => c.producer_id).filter((id): id is number => id !== null))];
  if (ids.length === 0) return "no command of this run is running";
  const now = Date.now();
  const lines = [`${ids.length} command${ids.length === 1 ? "" : "s"} of this run still running:`];
  for (const id of ids) {
    const log = await ctx.core.entries.findById(id);
    if (!log) continue;
    const producer = producerFromRow(log);
    const channels = await ctx.core.entries.channels(id);
    const since = Math.min(...channels.map((c) => c.created_at));
    const sizes = channels.map((c) => `${channelFromRow(c).name} ${c.bytes} bytes`).join(", ");
    const traits = [
      producer.background ? "background" : null,
      producer.tty ? `terminal ${producer.tty.cols}x${producer.tty.rows}` : null,
      `runner ${String(producer.runner)}`,
    ].filter(Boolean);
    lines.push(`- ${log.path}: $ ${producer.command} — running for ${age(now - since)}; ${sizes} (${traits.join(", ")})`);
  }
  return lines.join("\n");
}
