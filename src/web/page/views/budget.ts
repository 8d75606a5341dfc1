import type { SpoolClient } from "../../../client/spool-client.js";
import { amountWords, pausedWords, raiseStep } from "../../../protocol/agent-words.js";
import { act, may, type PageContext } from "../context.js";
import { h } from "../dom.js";
import { escapeControl } from "../format.js";
import type { Run } from "../model.js";
import { routeHash } from "../route.js";

/** A run paused at its budget, as a card shows it. */
export interface PausedRun {
  alias: string;
  paused: NonNullable<Run["paused"]>;
  updatedAt?: number | undefined;
}

/**
 * A run paused at its budget: what it reached, and the person's two answers, raise it by a step (it goes on) or stop
 * the run, called on `rpc` (the project's connection). In the queue (`project` given) it says whose run it is, with
 * a link to it; on the run's own page it stands in its header.
 */
export function budgetCard(page: PageContext, run: PausedRun, rpc: () => SpoolClient | null, project: string | null = null): HTMLElement {
  const paused = run.paused;
  const step = raiseStep(paused);
  const call = <T>(what: (client: SpoolClient) => Promise<T>) => {
    const client = rpc();
    if (!client) throw new Error(project ? `not connected to project ${project}: try again in a moment` : "not connected: try again in a moment");
    return what(client);
  };
  const button = (action: string, label: string, run: () => Promise<unknown>) => {
    const b = h("button", { type: "button", "data-action": action, ...(action === "stop-run" ? { class: "danger" } : {}) }, label);
    b.addEventListener("click", () => void act(page, b, label, run));
    return b;
  };
  const raise = button("raise-budget", `Raise by ${amountWords(paused.kind, step)}`, () =>
    call((c) => c.call("run/budget", { run: run.alias, add: { [paused.kind]: step } }, { timeoutMs: 0 })),
  );
  const stop = button("stop-run", "Stop the run", () =>
    call((c) => c.call("run/abort", { run: run.alias, reason: "stopped at its budget from the web view" })),
  );
  return h(
    project ? "article" : "div",
    { class: `card budget${project ? " queued" : ""}`, "data-run": run.alias, "data-budget": paused.kind, ...(project ? { "data-project": project } : {}) },
    project
      ? h(
          "div",
          { class: "card-head" },
          h("a", { class: "project-name", href: routeHash({ project, run: null, producer: null }), title: "project" }, escapeControl(project)),
          h("a", { href: routeHash({ project, run: run.alias, producer: null }) }, escapeControl(run.alias)),
        )
      : null,
    h("strong", null, "Paused"),
    " ",
    h("span", { class: "why" }, pausedWords(paused)),
    may(page, "person") ? h("div", { class: "actions" }, raise, stop) : h("div", { class: "dim" }, "A person raises it or stops the run."),
  );
}
