import { RequestError, type ToolCallStatus } from "@agentclientprotocol/sdk";
import type { SpoolNotifications } from "../protocol/notifications.js";
import { defaultRunnerName } from "../protocol/proposal-facts.js";
import { type Producer, type ProposalView, producerOf } from "../protocol/views.js";
import { absoluteCwd, isCommandTool, tail, toolLook } from "./content.js";
import { CommandOutput, type ToolChange } from "./output.js";
import { askEditor, showUndecided, withdraw } from "./permissions.js";
import { acpError, type SessionScope, type ToolView } from "./scope.js";

/** Tool calls remembered per session; the oldest finished ones are forgotten past it. */
const MAX_TOOLS = 500;
/** How long a turn waits for its commands' final updates before it answers. */
const SETTLE_MS = 3_000;

/**
 * The run's tool calls as the editor sees them: each announced once (`tool_call`), a proposal asked about
 * (`session/request_permission`), an accepted command's output followed into its updates, and each one's
 * final status. Spool's `run/tool`, `run/proposal` and `run/resolved` notifications drive it.
 */
export class ToolCalls {
  readonly #tools = new Map<string, ToolView>();
  readonly #byPath = new Map<string, string>();
  /** Called whenever a tool call settles. */
  readonly #settledWaiters = new Set<() => void>();

  constructor(private readonly scope: SessionScope) {}

  all(): IterableIterator<ToolView> {
    return this.#tools.values();
  }

  get(id: string): ToolView | undefined {
    return this.#tools.get(id);
  }

  /** The command's tool call whose producer's log entry is `path` (else the one with id `id`). */
  byPath(path: string, id: string): ToolView | undefined {
    return this.#tools.get(this.#byPath.get(path) ?? id);
  }

  // ---- Spool's notifications -----------------------------------------------------------------------

  async onTool(p: SpoolNotifications["run/tool"]): Promise<void> {
    if (p.tool === "done") return;
    const view = await this.view(p.id, isCommandTool(p.tool) ? p.path : null, p.arguments, p.tool);
    if (p.status !== "completed" && p.status !== "failed") return;
    if (view.settled) return;
    // A command's tool call follows its producer; without one (it could not be proposed), or for the other tools, the answer settles it.
    if (isCommandTool(p.tool) && view.path) return;
    await this.settle(view, p.status, p.result ?? "");
  }

  /** A proposal as announced, or as catchUp rebuilds it from its log entry (which does not need its time). */
  async onProposal(p: ProposalView): Promise<void> {
    const view = await this.view(p.toolCallId ?? p.path, p.path, callArguments(p.producer), p.producer.tool);
    if (view.resolved || view.answered || view.permission || view.deciding || view.settled) return;
    view.facts = p.producer;
    await this.scope.foreground.waiting(p.path);
    if (!this.scope.editor.mayDecide) return showUndecided(this.scope, view);
    // The runner a decision here picks, named in the request (its name only: the request goes out without it if the list fails).
    const runners = view.facts.runner === null ? await this.scope.link.client.call("runner/list", {}).catch(() => null) : null;
    askEditor(this.scope, view, runners ? defaultRunnerName(runners.runners) : null);
  }

  async onResolved(p: SpoolNotifications["run/resolved"]): Promise<void> {
    const id = this.#byPath.get(p.path) ?? p.toolCallId ?? p.path;
    let view = this.#tools.get(id);
    if (!view) {
      // Decided before this session saw it proposed (a rule, or before a load): its tool and command are in the log entry.
      const log = producerOf(await this.scope.link.client.call("entry/get", { run: this.scope.run, path: p.path }));
      view = await this.view(id, p.path, callArguments(log), log.tool);
    }
    this.locate(view, p.path);
    await this.scope.foreground.decided(p.path);
    if (view.resolved) return;
    view.resolved = true;
    withdraw(view);
    if (p.decision === "reject") {
      await this.settle(view, "failed", `rejected by ${p.resolvedBy}${p.reason ? `: ${p.reason}` : ""}`);
      return;
    }
    // Who decided, in the tool call: a client whose question could not be withdrawn (acpx 0.1.15 knows no
    // `$/cancel_request`) still reads that it is moot. A terminal, when shown, stays after it.
    const who: ToolChange["content"] = [{ type: "content", content: { type: "text", text: `accepted by ${p.resolvedBy}` } }];
    if (this.scope.editor.terminal) who.push({ type: "terminal", terminalId: view.id });
    await this.change(view, { status: "in_progress", content: who });
    this.follow(view, `accepted by ${p.resolvedBy}`);
  }

  // ---- one tool call ---------------------------------------------------------------------------------

  /** The tool call with this id, announced to the editor (`tool_call`) the first time it is seen. */
  async view(id: string, path: string | null, args: Record<string, unknown>, tool = String(args.tool ?? "sh")): Promise<ToolView> {
    let view = this.#tools.get(id);
    if (!view) {
      const rawInput: Record<string, unknown> = { ...args };
      const look = toolLook(tool, rawInput);
      view = {
        id,
        tool,
        ...look,
        rawInput,
        path: null,
        facts: null,
        resolved: false,
        settled: false,
        known: null,
        permission: null,
        deciding: false,
        answered: false,
        output: null,
        turn: this.scope.turns(),
      };
      this.#tools.set(id, view);
      this.#forgetOld();
      const terminal = this.scope.editor.terminal && isCommandTool(tool);
      await this.scope.updates.send({
        sessionUpdate: "tool_call",
        toolCallId: id,
        title: look.title,
        kind: look.kind,
        status: "pending",
        rawInput,
        ...(terminal
          ? {
              content: [{ type: "terminal", terminalId: id }],
              _meta: { terminal_info: { terminal_id: id, cwd: this.#cwd(rawInput) } },
            }
          : {}),
      });
    }
    if (path) this.locate(view, path);
    return view;
  }

  /** Ties a command's tool call to its producer's log entry. */
  locate(view: ToolView, path: string): void {
    if (view.path || !isCommandTool(view.tool)) return;
    view.path = path;
    this.#byPath.set(path, view.id);
  }

  #cwd(args: Record<string, unknown>): string {
    return absoluteCwd(this.scope.link.root, typeof args.cwd === "string" ? args.cwd : null);
  }

  #forgetOld(): void {
    if (this.#tools.size <= MAX_TOOLS) return;
    for (const [id, view] of this.#tools) {
      if (this.#tools.size <= MAX_TOOLS) return;
      if (!view.settled) continue;
      this.#tools.delete(id);
      if (view.path) this.#byPath.delete(view.path);
    }
  }

  /** Streams an accepted command's output into its tool call until it ends. */
  follow(view: ToolView, heading?: string): void {
    if (view.output || !view.path) return;
    const { link, log, updates } = this.scope;
    const output = new CommandOutput({
      client: link.client,
      run: this.scope.run,
      path: view.path,
      toolCallId: view.id,
      terminal: this.scope.editor.terminal,
      snapshot: this.scope.editor.terminalSnapshot ?? false,
      send: (change, output) => updates.enqueue(() => this.change(view, change), output),
      reconnected: (ms) => link.reconnected(ms),
      log,
      heading,
    });
    view.output = output;
    output
      .follow()
      .then((ending) => {
        if (ending) this.markSettled(view);
      })
      .catch((error: unknown) => {
        if (!updates.closed) log.warn(`following ${view.path} failed: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => {
        if (view.output === output) view.output = null;
      });
  }

  markSettled(view: ToolView): void {
    view.settled = true;
    for (const waiter of this.#settledWaiters) waiter();
  }

  /** Shows the tool call's final status, with `text` as its content. */
  async settle(view: ToolView, status: ToolCallStatus, text: string): Promise<void> {
    this.markSettled(view);
    await this.change(view, { status, content: [{ type: "content", content: { type: "text", text: tail(text) } }] });
  }

  change(view: ToolView, change: ToolChange): Promise<void> {
    return this.scope.updates.send({ sessionUpdate: "tool_call_update", toolCallId: view.id, ...change });
  }

  // ---- waiting for them --------------------------------------------------------------------------------

  /**
   * A tool call whose end the editor is still to be shown: of this turn, or followed, or waiting on a
   * decision. (One replayed by a load that Spool will say nothing more about is left as it was shown.)
   */
  live(view: ToolView): boolean {
    if (view.settled) return false;
    return view.turn === this.scope.turns() || view.output !== null || view.permission !== null || view.deciding || (view.path !== null && !view.resolved);
  }

  /** Waits (at most `ms`) until every live tool call has settled. */
  async untilSettled(ms: number): Promise<void> {
    const open = () => [...this.#tools.values()].some((v) => this.live(v));
    if (!open()) return;
    let timer: NodeJS.Timeout | undefined;
    let wake!: () => void;
    const changed = () => {
      if (!open() || this.scope.updates.closed) wake();
    };
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
      this.#settledWaiters.add(changed);
    });
    clearTimeout(timer);
    this.#settledWaiters.delete(changed);
  }

  /** Waits (within reason) until every command being followed that ended has sent its last updates. */
  async outputsQuiet(): Promise<void> {
    const outputs = [...this.#tools.values()].flatMap((v) => (v.output ? [v.output] : []));
    if (outputs.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(outputs.map((o) => o.quiet())), new Promise<void>((resolve) => (timer = setTimeout(resolve, SETTLE_MS)))]);
    clearTimeout(timer);
  }

  /** Stops the running command of this tool call (`stream/cancel`); its end reaches the editor as any command's does. */
  async cancelCommand(id: string): Promise<void> {
    const view = this.#tools.get(id);
    if (!view?.path || !view.output || view.settled || view.output.finishing)
      throw RequestError.invalidParams({ terminalId: id }, "no running command of this session has this terminal");
    await this.scope.link.client
      .call("stream/cancel", { run: this.scope.run, path: view.path, reason: `cancelled in ${this.scope.editor.name}` })
      .catch((error: unknown) => {
        throw acpError(error);
      });
  }

  /** Withdraws every open permission request. */
  withdrawAll(): void {
    for (const view of this.#tools.values()) withdraw(view);
  }

  /** Stops showing anything: permission requests withdrawn, outputs no longer followed. */
  async close(): Promise<void> {
    for (const view of this.#tools.values()) {
      withdraw(view);
      await view.output?.close();
      view.output = null;
    }
  }
}

/** What describes a command's tool call, from its producer (a call the editor learns of from its log entry): as the model would pass it. */
export function callArguments(p: Producer): Record<string, unknown> {
  return {
    command: p.command,
    ...(p.cwd !== null ? { cwd: p.cwd } : {}),
    ...(p.env.length > 0 ? { env: Object.fromEntries(p.env) } : {}),
    ...(p.timeoutMs !== null ? { timeout_ms: p.timeoutMs } : {}),
  };
}
