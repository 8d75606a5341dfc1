import { runnerShown } from "../../../protocol/shown-state.js";
import { h } from "../dom.js";
import { escapeControl, statusClass } from "../format.js";
import { isOpen, type Project, type Run, type Runner, runWord } from "../model.js";
import { type Route, routeHash } from "../route.js";
import { since } from "./common.js";

/** The server's projects, with how many runs wait on a proposal and how many are open. */
export function projectItems(projects: Project[], selected: string | null): HTMLElement[] {
  return projects.map((p) =>
    h(
      "a",
      {
        href: routeHash({ project: p.name, run: null, producer: null }),
        class: `item${p.name === selected ? " selected" : ""}`,
        title: p.root,
        "data-project": p.name,
      },
      h("span", { class: "name" }, p.name),
      p.waiting > 0 ? h("span", { class: "badge waiting", title: "runs with a proposal waiting for a decision" }, `${p.waiting} waiting`) : null,
      p.open > 0 ? h("span", { class: "badge open", title: "open runs" }, `${p.open} open`) : null,
      h("span", { class: "dim" }, `${p.runs} run${p.runs === 1 ? "" : "s"}`),
    ),
  );
}

/** The project's runs, open ones first, each with its status word, pending proposals and age. */
export function runItems(runs: Iterable<Run>, pending: Map<string, number>, route: Route): HTMLElement[] {
  const sorted = [...runs].sort((a, b) => Number(isOpen(b.status)) - Number(isOpen(a.status)) || b.updatedAt - a.updatedAt);
  if (sorted.length === 0) return [h("p", { class: "dim pad" }, "No runs yet.")];
  return sorted.map((r) => {
    const waiting = pending.get(r.alias) ?? 0;
    const word = runWord(r, waiting);
    return h(
      "a",
      {
        href: routeHash({ project: route.project, run: r.alias, producer: null }),
        class: `item run${r.alias === route.run ? " selected" : ""}`,
        "data-run": r.alias,
      },
      h("span", { class: statusClass(word) }, word),
      h("span", { class: "name" }, escapeControl(r.alias)),
      waiting > 0 ? h("span", { class: "badge waiting", title: "proposals waiting for a decision" }, `${waiting} to decide`) : null,
      since(r.updatedAt),
      r.title ? h("span", { class: "title" }, escapeControl(r.title)) : null,
    );
  });
}

/** What the page shows of a project before a run is chosen: its root and its runners. */
export function overview(project: Project | undefined, name: string, runCount: number, runners: Runner[]): HTMLElement {
  const items = runners.map((r) => {
    const shown = runnerShown(r, runners);
    return h(
      "li",
      null,
      h("span", { class: statusClass(shown.state === "claiming" && !shown.resting ? "done" : "waiting") }, shown.stateWord),
      " ",
      h("strong", null, escapeControl(r.name)),
      ` ${r.backend}${shown.default ? " · default" : shown.fallback ? " · fallback (plain accepts go here)" : ""}${r.embedded ? " · embedded" : ""} · sandbox ${shown.sandboxWord} · network ${shown.networkWord} · attached by ${escapeControl(shown.attachedByWord)} · ${escapeControl(shown.whereWord)} · ${shown.loadWord} running${r.pools?.length ? ` · pool ${r.pools.map(escapeControl).join(", ")}` : ""}`,
    );
  });
  return h(
    "div",
    { class: "overview" },
    h("h1", null, name),
    h("p", { class: "dim" }, project?.root ?? ""),
    h(
      "p",
      null,
      ...(runCount === 0
        ? ["No runs yet."]
        : [
            "Choose a run ",
            // The list is beside the page on a wide screen, under it on a narrow one (styles/phone.css).
            h("span", { class: "wide-only" }, "on the left"),
            h("span", { class: "narrow-only" }, "from the list below"),
            " to follow its conversation and output.",
          ]),
    ),
    h("h2", null, "Runners"),
    items.length === 0 ? h("p", { class: "dim" }, "No runner is attached.") : h("ul", { class: "runners" }, ...items),
  );
}
