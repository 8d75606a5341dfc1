import { amountWords, pausedWords, raiseStep } from "../protocol/agent-words.js";
import type { SpoolNotifications } from "../protocol/notifications.js";
import { OPEN_RUN, RUN } from "../protocol/status.js";
import type { SessionScope } from "./scope.js";

type Reached = NonNullable<SpoolNotifications["run/state"]["budget"]>;

/**
 * A run paused at its budget, asked of the editor like a proposal: a tool call that says which budget was reached,
 * the session's state `requires_action` (v2), and a permission request whose answers raise the budget (run/budget)
 * or stop the run (run/abort). The request is withdrawn when the run goes on or ends some other way.
 */
export class BudgetAsks {
  #open: { id: string; controller: AbortController; reached: Reached } | null = null;
  #count = 0;

  constructor(private readonly scope: SessionScope) {}

  async onState(p: SpoolNotifications["run/state"]): Promise<void> {
    if (p.event === "budget reached" && p.budget) return this.#ask(p.budget);
    if (this.#open && (p.event === "budget raised" || p.event === "aborted" || p.event === "loop failed"))
      await this.#settle(p.event === "budget raised" ? "raised" : "stopped");
  }

  /**
   * The run as it is now, for an editor that joined after it paused (session/load, session/resume, a connection
   * that came back): a paused run is asked about; a request left open for a run that went on meanwhile is withdrawn.
   */
  async sync(run: { status: number; paused?: Reached | null | undefined }): Promise<void> {
    if (run.status === RUN.paused && run.paused) return this.#ask(run.paused);
    if (this.#open) await this.#settle(OPEN_RUN.includes(run.status) ? "raised" : "stopped");
  }

  async #ask(reached: Reached): Promise<void> {
    const { scope } = this;
    if (!scope.editor.mayDecide) return;
    if (this.#open) {
      const was = this.#open.reached;
      if (was.kind === reached.kind && was.limit === reached.limit && was.used === reached.used) return;
      // Still paused, at another limit now (a raise that was not enough): that request is replaced.
      await this.#settle("changed");
    }
    const id = `budget-${scope.run}-${++this.#count}`;
    const controller = new AbortController();
    this.#open = { id, controller, reached };
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

  async #settle(how: "raised" | "stopped" | "changed"): Promise<void> {
    const open = this.#open!;
    this.#open = null;
    open.controller.abort();
    const outcome = { raised: "budget raised: the run goes on", stopped: "the run was stopped", changed: "still paused, at another limit" }[how];
    await this.scope.updates.send({
      sessionUpdate: "tool_call_update",
      toolCallId: open.id,
      status: how === "stopped" ? "failed" : "completed",
      rawOutput: { outcome },
    });
    await this.scope.foreground.decided(open.id);
  }
}
