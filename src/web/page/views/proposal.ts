import { defaultRunnerName, envPair, factValue } from "../../../protocol/proposal-facts.js";
import { h } from "../dom.js";
import { deadlineText, escapeControl, hasControl } from "../format.js";
import type { Proposal, Runner } from "../model.js";
import { routeHash } from "../route.js";
import { shown, since } from "./common.js";

export interface ProposalActions {
  /** Approve on `runner` ("" for the project's default), or reject with `reason` ("" for none). */
  resolve(p: Proposal, decision: "accept" | "reject", button: HTMLButtonElement, runner: string, reason: string): void;
}

/**
 * A pending proposal as someone deciding must see it: the facts every client shows (src/protocol/proposal-facts.ts)
 * — the command, its directory, the environment it adds, its terminal, the runner it would run on, its
 * sandbox mode, whether it runs in the background and its time limit — each with control characters shown
 * escaped, not obeyed. `changed`: why it is drawn again (its facts changed and an approval was refused).
 */
export function proposalCard(p: Proposal, project: string | null, runners: Runner[], actions: ProposalActions | null, changed?: string): HTMLElement {
  const facts = p.producer;
  const fallback = defaultRunnerName(runners);
  const runnerSelect = h(
    "select",
    { "aria-label": "runner" },
    // The claim recorded is that of the runner it goes to: the default's when it named none, else the named one's.
    h(
      "option",
      { value: "" },
      factValue({ ...facts, runner: null, runnerClaim: facts.runner === null ? facts.runnerClaim : null }, "runner", { defaultRunner: fallback }),
    ),
    ...runners
      .filter((r) => r.state === "claiming")
      .map((r) =>
        h(
          "option",
          { value: r.name, selected: r.name === facts.runner },
          r.name === facts.runner ? `${factValue(facts, "runner")} · ${r.backend}` : `${escapeControl(r.name)} · ${r.backend}`,
        ),
      ),
  );
  // A selector shows as much of its choice as its width allows: on a phone that cuts the runner's words, so the
  // choice is also written out whole beneath it (phone.css shows it on narrow screens only).
  const runnerWhole = h("span", { class: "runner-whole" }, selectedText(runnerSelect));
  runnerSelect.addEventListener("change", () => {
    runnerWhole.textContent = selectedText(runnerSelect);
  });
  const reason = h("input", { type: "text", placeholder: "reason (optional)", "aria-label": "reason", maxlength: 500 });
  const approve = h("button", { type: "button", class: "approve" }, "Approve");
  const reject = h("button", { type: "button", class: "reject" }, "Reject");
  approve.addEventListener("click", () => actions?.resolve(p, "accept", approve, runnerSelect.value, ""));
  reject.addEventListener("click", () => actions?.resolve(p, "reject", reject, "", reason.value.trim()));
  const mode = facts.sandbox.mode;
  const fact = (label: string, value: HTMLElement | string) => [h("dt", null, label), h("dd", { "data-fact": label }, value)];
  const dim = (text: string) => h("span", { class: "dim" }, text);
  return h(
    "article",
    { class: "card proposal", "data-project": project ?? "", "data-path": p.path, "data-run": p.run },
    h(
      "div",
      { class: "card-head" },
      // The queue spans projects: each card says whose it is.
      project ? h("a", { class: "project-name", href: routeHash({ project, run: null, producer: null }), title: "project" }, escapeControl(project)) : null,
      h("span", { class: "tool" }, escapeControl(facts.tool)),
      h(
        "span",
        { class: `badge sandbox-${mode}${mode === "read-only" ? " ro" : ""}`, title: factValue(facts, "sandbox") },
        mode === "full" ? "no sandbox" : mode,
      ),
      h("span", { class: "other-run-note badge", hidden: true, title: "this proposal belongs to another run than the one shown" }, "another run:"),
      h("a", { href: routeHash({ project, run: p.run, producer: null }) }, escapeControl(p.run)),
      h("span", { class: "dim path" }, escapeControl(p.path)),
      since(p.createdAt),
    ),
    // The server's deadline, when one is in force: the card says when nobody's decision becomes a rejection.
    p.expiresAt != null ? h("p", { class: "deadline", "data-deadline": String(p.expiresAt) }, deadlineText(p.expiresAt)) : null,
    // Drawn again after an approval was refused because the facts changed (FACTS_CHANGED): why, above the facts now.
    changed ? h("p", { class: "facts-changed", role: "alert" }, `Not approved: ${escapeControl(changed)}. The facts below are the new ones.`) : null,
    h("pre", { class: "command" }, "$ ", shown(facts.command)),
    h(
      "dl",
      { class: "facts" },
      ...fact(
        "cwd",
        facts.cwd === null
          ? dim(factValue(facts, "cwd"))
          : h("span", null, shown(facts.cwd), facts.root === null ? "" : dim(` (under the project root ${escapeControl(facts.root)})`)),
      ),
      ...fact(
        "env",
        facts.env.length === 0 ? dim(factValue(facts, "env")) : h("span", null, ...facts.env.map((pair) => h("code", { class: "env" }, envText(pair)))),
      ),
      ...fact("tty", facts.tty ? factValue(facts, "tty") : dim(factValue(facts, "tty"))),
      // Only someone who may decide chooses where it runs: a viewer reads the runner, with no control it cannot use.
      ...fact("runner", actions ? h("span", null, runnerSelect, runnerWhole) : factValue(facts, "runner", { defaultRunner: fallback })),
      ...fact("sandbox", factValue(facts, "sandbox")),
      ...fact("network", facts.network === null ? dim(factValue(facts, "network")) : factValue(facts, "network")),
      ...fact("background", factValue(facts, "background")),
      ...fact("timeout", factValue(facts, "timeout")),
    ),
    // No actions for a principal that may not decide (null): its card shows the facts only.
    actions ? h("div", { class: "actions" }, approve, reject, reason) : null,
    // Shown while the connection its decision goes through is down (routes/project.ts `decidable`).
    actions
      ? h(
          "p",
          { class: "offline-note", role: "status", hidden: true },
          "Not connected — reconnecting. Approve and Reject come back once the page is live again.",
        )
      : null,
  );
}

/** One environment pair as every client writes it (quoted when needed), marked when escaping changed it. */
function envText([name, value]: [string, string]): HTMLElement {
  const marked = hasControl(name) || hasControl(value);
  return h("span", { class: marked ? "escaped" : "", title: marked ? "contains control characters, shown escaped" : null }, envPair([name, value]));
}

/** The words of a selector's chosen option. */
function selectedText(select: HTMLSelectElement): string {
  return select.selectedOptions[0]?.textContent ?? "";
}
