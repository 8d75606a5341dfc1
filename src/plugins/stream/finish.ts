import { conflict } from "../../rpc/errors.js";
import { lineCount, parseAttributes, type Attributes } from "../../store/entries.js";
import { finishProducer } from "../../store/producers.js";
import { findProjectById } from "../../store/projects.js";
import { findRunById } from "../../store/runs.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import type { App } from "../plugin.js";
import type { WatcherHub } from "./watchers.js";

export type Outcome =
  | { kind: "completed"; exit_code?: number | null; signal?: string | null; duration?: number }
  | { kind: "aborted"; reason: string; duration?: number }
  | { kind: "cancelled"; reason: string };

export interface FinishResult {
  path: string;
  status: number;
  changed: boolean;
  channels: { channel: number; path: string; status: number; bytes: number; lines: number }[];
}

function statusOf(outcome: Outcome): number {
  if (outcome.kind !== "completed") return 499;
  return (outcome.exit_code ?? 0) !== 0 || outcome.signal ? 500 : 200;
}

function describeOutcome(outcome: Outcome): string {
  switch (outcome.kind) {
    case "completed":
      if (outcome.signal) return `killed by ${outcome.signal}`;
      return outcome.exit_code === undefined || outcome.exit_code === null ? "completed (exit code unknown)" : `exit ${outcome.exit_code}`;
    case "aborted":
      return `aborted: ${outcome.reason}`;
    case "cancelled":
      return `cancelled: ${outcome.reason}`;
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The log entry's one-line summary: command, outcome, duration, size of each channel. */
export function summaryLine(command: string, outcome: Outcome, channels: EntryRow[]): string {
  const duration = "duration" in outcome && outcome.duration !== undefined ? ` in ${outcome.duration} ms` : "";
  const sizes = channels
    .map((c) => `${String(parseAttributes(c).name ?? `channel ${c.channel}`)} ${plural(c.bytes, "byte")}/${plural(lineCount(c), "line")}`)
    .join(", ");
  return `$ ${command} → ${describeOutcome(outcome)}${duration}; ${sizes}`;
}

/**
 * Finishes a producer: all open channels get the outcome's status, attributes
 * keep exit code, signal, duration or reason, the log entry is rewritten to
 * one line, watchers get `stream/end`. A second call changes nothing and
 * reports the status already there.
 */
export async function finishStream(app: App, hub: WatcherHub, project: ProjectRef, run: RunRow, log: EntryRow, outcome: Outcome): Promise<FinishResult> {
  if (log.status !== 200) {
    throw conflict(`"${log.path}" has no data channels: it is ${log.status === 202 ? "still a pending proposal" : `at status ${log.status}`}`, {
      status: log.status,
    });
  }
  const status = statusOf(outcome);
  const details: Attributes = { outcome: outcome.kind };
  if (outcome.kind === "completed") {
    details.exit_code = outcome.exit_code ?? null;
    details.signal = outcome.signal ?? null;
  } else {
    details.reason = outcome.reason;
  }
  if ("duration" in outcome && outcome.duration !== undefined) details.duration = outcome.duration;
  const logAttributes = parseAttributes(log);
  const { changed, channels } = await finishProducer(app.store.db, log, {
    status,
    channelAttributes: details,
    log: (rows) => ({
      attributes: {
        ...logAttributes,
        ...details,
        status,
        channels: Object.fromEntries(rows.map((r) => [String(r.channel), { path: r.path, bytes: r.bytes, lines: lineCount(r) }])),
      },
      body: summaryLine(String(logAttributes.command), outcome, rows),
    }),
  });
  if (changed) {
    for (const ch of channels) {
      hub.end(ch.id, { status: ch.status, ...(outcome.kind === "completed" ? { exit_code: outcome.exit_code ?? null } : {}) });
      await app.emit("entry:status", { projectId: project.id, run, entry: ch, previous: 102 });
    }
  }
  return {
    path: log.path,
    status: channels[0]?.status ?? status,
    changed,
    channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, bytes: c.bytes, lines: lineCount(c) })),
  };
}

/**
 * Finishes the producer whose log entry has this id, looking up its run and
 * project (for the restart reaper and "runner lost", which hold only the id).
 * Resolves null when the producer no longer exists.
 */
export async function finishProducerById(app: App, hub: WatcherHub, logId: number, outcome: Outcome): Promise<FinishResult | null> {
  const db = app.store.db;
  const log = await db.selectFrom("entries").selectAll().where("id", "=", logId).executeTakeFirst();
  const run = log && (await findRunById(db, log.run_id));
  const project = run && (await findProjectById(db, run.project_id));
  if (!log || !run || !project) return null;
  return finishStream(app, hub, project, run, log, outcome);
}
