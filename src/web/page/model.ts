import type { ResultOf, SpoolNotifications } from "../../client/api.js";
import { ENTRY, entryStatusWord, OPEN_RUN, RUN, runStatusWord } from "./format.js";

/** What the page holds, in the shapes the server sends. */
export type Project = ResultOf<"project/list">["projects"][number];
export type Run = ResultOf<"run/list">["runs"][number];
export type Entry = ResultOf<"entry/list">["entries"][number];
export type Message = ResultOf<"run/history">["messages"][number];
export type Runner = ResultOf<"runner/list">["runners"][number];
export type Proposal = SpoolNotifications["run/proposal"];
export type ToolNotice = SpoolNotifications["run/tool"];

export const isOpen = (status: number) => OPEN_RUN.includes(status);

/**
 * A run's status as a word; a run without a model at 200 is idle (fed by hand), not finished. With the
 * number of its proposals waiting for a decision (`pending`), a run at 202 with none waits on no one: the
 * command it accepted runs while its turn waits for the result, so it is running.
 */
export function runWord(run: Run, pending?: number): string {
  if (run.model === null && run.status === RUN.done) return "idle";
  if (run.status === RUN.waiting && pending === 0) return runStatusWord(RUN.running);
  return runStatusWord(run.status);
}

/** A producer as the page shows it: its log entry and its data channels. */
export interface Producer {
  log: Entry;
  channels: Entry[];
}

/** A run's entries as producers, newest first, each with its channels in channel order. */
export function producersOf(entries: Entry[]): Producer[] {
  const logs = new Map<string, Producer>();
  for (const e of entries) if (e.path.startsWith("log://")) logs.set(e.path, { log: e, channels: [] });
  for (const e of entries) {
    const log = typeof e.attributes.log === "string" ? logs.get(e.attributes.log) : undefined;
    if (log) log.channels.push(e);
  }
  for (const p of logs.values()) p.channels.sort((a, b) => Number(a.attributes.channel) - Number(b.attributes.channel));
  return [...logs.values()].reverse();
}

/** Where a producer stands, as a word: proposed, rejected, accepted, running, done, failed, cancelled. */
export function producerState(p: Producer): { word: string; running: boolean } {
  if (p.log.status === ENTRY.proposed) return { word: "proposed", running: false };
  if (p.log.status === ENTRY.rejected) return { word: "rejected", running: false };
  const open = p.channels.some((c) => c.status === ENTRY.streaming);
  if (open || p.log.attributes.outcome === undefined) return { word: open || p.channels.length > 0 ? "running" : "accepted", running: open };
  return { word: entryStatusWord(Number(p.log.attributes.status ?? p.channels[0]?.status ?? p.log.status)), running: false };
}

/** The name people read for a channel: its producer's name for it, else its number. */
export const channelName = (c: Entry) => String(c.attributes.name ?? `channel ${c.attributes.channel}`);
