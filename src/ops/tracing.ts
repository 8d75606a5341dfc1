import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import type { CoreObserver, DecisionFacts } from "../core/observer.js";
import type { Outcome } from "../core/producers/outcome.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import type { EntryRow, RunRow } from "../store/schema.js";

/** The spans of one proposal still open: the root, the decision's wait, the dispatch, each channel. */
interface Open {
  root: Span;
  decision: Span | null;
  dispatch: Span | null;
  channels: Map<number, Span>;
  /** The channels the accept opened (number → path), started as spans when the owner starts the command. */
  planned: { channel: number; path: string }[];
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote parent a W3C traceparent names (validated by the protocol's schema already; anything else: none). */
export function parentContext(traceparent: string | undefined) {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  if (!match) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: match[1]!, spanId: match[2]!, traceFlags: Number.parseInt(match[3]!, 16), isRemote: true });
}

/**
 * One trace per proposal: a `spool.proposal` span from the proposal to its end (or its rejection), with a
 * `spool.decision` child for the wait for a decision, `spool.dispatch` from the accept to the runner's start, and
 * one `spool.channel` per channel from the start to its end. A caller's traceparent (the proposal's, else its
 * connection's `initialize`) makes the root a child of the caller's span. Attributes: the project, run, entry id,
 * tool, sandbox mode, who proposed and who decided, the runner; the command's text (and the paths, whose slugs
 * are made of its words) only with `commandText`.
 */
export class ProposalTracer implements CoreObserver {
  readonly #open = new Map<number, Open>();

  constructor(
    private readonly tracer: Tracer,
    private readonly options: { commandText: boolean },
  ) {}

  proposed(project: ProjectRef, run: RunRow, log: EntryRow, traceparent: string | undefined): void {
    const attributes = parse(log.attributes);
    const root = this.tracer.startSpan(
      "spool.proposal",
      {
        kind: SpanKind.INTERNAL,
        startTime: log.created_at,
        attributes: {
          "spool.project": project.name,
          "spool.run": run.alias,
          "spool.entry": log.id,
          "spool.tool": String(attributes.tool ?? ""),
          "spool.sandbox": String(attributes.sandbox ?? ""),
          "spool.proposed_by": String(attributes.proposedBy ?? ""),
          ...(typeof attributes.runner === "string" ? { "spool.runner.proposed": attributes.runner } : {}),
          // The path's slug is made of the command's words: it goes with the command's text.
          ...(this.options.commandText && typeof attributes.command === "string" ? { "spool.command": attributes.command, "spool.path": log.path } : {}),
        },
      },
      parentContext(traceparent),
    );
    const decision = this.tracer.startSpan("spool.decision", { startTime: log.created_at }, trace.setSpan(ROOT_CONTEXT, root));
    this.#open.set(log.id, { root, decision, dispatch: null, channels: new Map(), planned: [] });
  }

  resolved(_project: ProjectRef, _run: RunRow, log: EntryRow, details: DecisionFacts): void {
    const open = this.#open.get(log.id);
    if (!open) return;
    const facts = {
      "spool.decision": details.decision,
      "spool.decided_by": details.resolvedBy,
      "spool.decided_by.kind": details.resolver.kind === "connection" ? "person" : details.resolver.kind,
      ...(details.runner ? { "spool.runner": details.runner } : {}),
    };
    open.decision?.setAttributes(facts);
    open.decision?.end();
    open.decision = null;
    open.root.setAttributes(facts);
    if (details.decision === "reject") {
      open.root.end();
      this.#open.delete(log.id);
      return;
    }
    open.planned = details.channels.map((c) => ({ channel: c.channel, path: c.path }));
  }

  dispatched(log: EntryRow, runner: string): void {
    const open = this.#open.get(log.id);
    if (!open) return;
    open.dispatch = this.tracer.startSpan("spool.dispatch", { attributes: { "spool.runner": runner } }, trace.setSpan(ROOT_CONTEXT, open.root));
  }

  started(log: EntryRow, runner: string): void {
    const open = this.#open.get(log.id);
    if (!open) return;
    open.dispatch?.end();
    open.dispatch = null;
    const parent = trace.setSpan(ROOT_CONTEXT, open.root);
    for (const { channel, path } of open.planned) {
      open.channels.set(
        channel,
        this.tracer.startSpan(
          "spool.channel",
          { attributes: { "spool.channel": channel, "spool.runner": runner, ...(this.options.commandText ? { "spool.path": path } : {}) } },
          parent,
        ),
      );
    }
  }

  finished(log: EntryRow, channels: readonly EntryRow[], status: number, outcome: Outcome): void {
    const open = this.#open.get(log.id);
    if (!open) return;
    this.#open.delete(log.id);
    open.dispatch?.end();
    for (const row of channels) {
      const span = open.channels.get(row.channel ?? -1);
      if (!span) continue;
      span.setAttributes({ "spool.status": row.status, "spool.bytes": row.bytes });
      span.end();
      open.channels.delete(row.channel ?? -1);
    }
    for (const span of open.channels.values()) span.end();
    open.root.setAttributes({
      "spool.status": status,
      "spool.outcome": outcome.kind,
      ...(outcome.kind === "completed" && typeof outcome.exit_code === "number" ? { "spool.exit_code": outcome.exit_code } : {}),
    });
    if (outcome.kind !== "completed" || (outcome.exit_code ?? 0) !== 0) open.root.setStatus({ code: SpanStatusCode.ERROR, message: outcome.kind });
    open.root.end();
  }

  appended(): void {}
  delivered(): void {}
}

function parse(attributes: string): Record<string, unknown> {
  try {
    return JSON.parse(attributes) as Record<string, unknown>;
  } catch {
    return {};
  }
}
