import { amountWords, pausedWords } from "../protocol/agent-words.js";
import type { SpoolNotifications } from "../protocol/notifications.js";
import type { SessionScope } from "./scope.js";

type Reached = NonNullable<SpoolNotifications["run/state"]["budget"]>;

/** What the editor's "raise" adds: the limit once more (at least $1, 10k tokens, 10 minutes, 10 commands). */
export function raiseStep(reached: Reached): number {
  const floor = { costUsd: 1, tokens: 10_000, seconds: 600, commands: 10 }[reached.kind];
  return Math.max(reached.limit, floor);
}

/**
 * A run paused at its budget, asked of the editor like a proposal: a tool call that says which budget was reached,
 * the session's state `requires_action` (v2), and a permission request whose answers raise the budget (run/budget)
 * or stop the run (run/abort). The request is withdrawn when the run goes on or ends some other way.
 */
export class BudgetAsks {
  #open: { id: string; controller: AbortController } | null = null;
  #count = 0;

  constructor(private readonly scope: SessionScope) {}

  async onState(p: SpoolNotifications["run/state"]): Promise<void> {
    if (p.event === "budget reached" && p.budget) return this.#ask(p.budget);
    if (this.#open && (p.event === "budget raised" || p.event === "aborted" || p.event === "loop failed"))
      await this.#settle(p.event === "budget raised" ? "raised" : "stopped");
  }

  async #ask(reached: Reached): Promise<void> {
    const { scope } = this;
    if (this.#open || !scope.editor.mayDecide) return;
    const id = `budget-${scope.run}-${++this.#count}`;
    const controller = new AbortController();
    this.#open = { id, controller };
    const step = raiseStep(reached);
    const title = `Paused: ${pausedWords(reached)}`;
    const toolCall = { toolCallId: id, title, kind: "other" as const, status: "pending" as const, rawInput: { budget: reached } };
    await scope.updates.send({ sessionUpdate: "tool_call", ...toolCall });
    await scope.foreground.waiting(id);
    const raise = `Raise it by ${amountWords(reached.kind, step)} and go on`;
    scope.editor
      .requestPermission(
        {
          sessionId: scope.id,
          toolCall,
          options: [
            { optionId: "raise", name: raise, kind: "allow_once" },
            { optionId: "stop", name: "Stop the run", kind: "reject_once" },
          ],
        },
        controller.signal,
        { command: "", cwd: scope.link.root, facts: `${title}. ${raise}, or stop the run.`, terminalId: null, subject: "tool_call" },
      )
      .then(async (response) => {
        if (controller.signal.aborted) return;
        const option = response.outcome.outcome === "selected" ? response.outcome.optionId : null;
        if (option === "raise") await scope.link.client.call("run/budget", { run: scope.run, add: { [reached.kind]: step } });
        else if (option === "stop") await scope.link.client.call("run/abort", { run: scope.run, reason: `stopped at its budget in ${scope.editor.name}` });
      })
      .catch((error: unknown) => scope.log.warn(`answering the budget of ${scope.run} failed: ${error instanceof Error ? error.message : String(error)}`));
  }

  async #settle(how: "raised" | "stopped"): Promise<void> {
    const open = this.#open!;
    this.#open = null;
    open.controller.abort();
    await this.scope.updates.send({
      sessionUpdate: "tool_call_update",
      toolCallId: open.id,
      status: how === "raised" ? "completed" : "failed",
      rawOutput: { outcome: how === "raised" ? "budget raised: the run goes on" : "the run was stopped" },
    });
    await this.scope.foreground.decided(open.id);
  }
}
