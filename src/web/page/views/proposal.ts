import { h } from "../dom.js";
import { escapeControl } from "../format.js";
import type { Proposal, Runner } from "../model.js";
import { routeHash } from "../route.js";
import { shown, since } from "./common.js";

export interface ProposalActions {
  /** Approve on `runner` ("" for the project's default), or reject with `reason` ("" for none). */
  resolve(p: Proposal, decision: "accept" | "reject", button: HTMLButtonElement, runner: string, reason: string): void;
}

/**
 * A pending proposal as someone deciding must see it: the command, its directory, the environment it
 * adds and the runner it would run on, each with control characters shown escaped, not obeyed.
 */
export function proposalCard(p: Proposal, project: string | null, runners: Runner[], actions: ProposalActions): HTMLElement {
  const a = p.attributes;
  const env = a.env && typeof a.env === "object" ? Object.entries(a.env as Record<string, string>) : [];
  const proposedRunner = typeof a.runner === "string" ? a.runner : "";
  const fallback = (runners.find((r) => r.default) ?? runners.find((r) => r.embedded))?.name;
  const runnerSelect = h(
    "select",
    { "aria-label": "runner" },
    h("option", { value: "" }, `default runner${fallback ? ` (${escapeControl(fallback)})` : ""}`),
    ...runners
      .filter((r) => r.state === "attached")
      .map((r) => h("option", { value: r.name, selected: r.name === proposedRunner }, `${escapeControl(r.name)} · ${r.backend}`)),
  );
  const reason = h("input", { type: "text", placeholder: "reason (optional)", "aria-label": "reason", maxlength: 500 });
  const approve = h("button", { type: "button", class: "approve" }, "Approve");
  const reject = h("button", { type: "button", class: "reject" }, "Reject");
  approve.addEventListener("click", () => actions.resolve(p, "accept", approve, runnerSelect.value, ""));
  reject.addEventListener("click", () => actions.resolve(p, "reject", reject, "", reason.value.trim()));
  return h(
    "article",
    { class: "card proposal", "data-path": p.path, "data-run": p.run },
    h(
      "div",
      { class: "card-head" },
      h("span", { class: "tool" }, p.tool),
      a.readOnly ? h("span", { class: "badge ro", title: "runs in the read-only sandbox" }, "read-only") : null,
      h("a", { href: routeHash({ project, run: p.run, producer: null }) }, escapeControl(p.run)),
      h("span", { class: "dim path" }, escapeControl(p.path)),
      since(p.seenAt),
    ),
    h("pre", { class: "command" }, "$ ", shown(p.command)),
    h(
      "dl",
      { class: "facts" },
      h("dt", null, "cwd"),
      h("dd", null, typeof a.cwd === "string" && a.cwd ? shown(a.cwd) : h("span", { class: "dim" }, "project root")),
      h("dt", null, "env"),
      h(
        "dd",
        null,
        env.length === 0 ? h("span", { class: "dim" }, "none added") : h("span", null, ...env.map(([k, v]) => h("code", { class: "env" }, shown(`${k}=${v}`)))),
      ),
      h("dt", null, "runner"),
      h("dd", null, runnerSelect),
    ),
    h("div", { class: "actions" }, approve, reject, reason),
  );
}
