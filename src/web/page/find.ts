import type { ResultOf } from "../../protocol/methods/index.js";
import { message, type PageContext } from "./context.js";
import { fill, h } from "./dom.js";
import { shown } from "./views/common.js";

/** Matches asked for at a time (entry/search's default). */
const PAGE = 20;

type Match = ResultOf<"entry/search">["matches"][number];

/**
 * A find box over a command's stored output (entry/search, run on the server in a worker: every byte stored, not
 * only what the terminals drew): the matching lines with their numbers, twenty at a time; a click on one scrolls its
 * channel's terminal to it when the terminal holds that line, and says so when it does not.
 */
export class OutputFind {
  readonly element: HTMLElement;
  readonly #input = h("input", { type: "search", name: "find", placeholder: "find in the output", "aria-label": "find in the output" });
  readonly #results = h("div", { class: "find-results" });
  #searched: { run: string; path: string; pattern: string } | null = null;

  constructor(
    private readonly page: PageContext,
    /** What is searched: the producer shown (its log path searches its output channels merged). */
    private readonly target: () => { run: string; path: string } | null,
    /** Scrolls the terminal of `channelPath` to its line `line`; false when it does not hold that line. */
    private readonly reveal: (channelPath: string, line: number) => boolean,
  ) {
    const form = h("form", { class: "find" }, this.#input, h("button", { type: "submit" }, "Find"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const target = this.target();
      const pattern = this.#input.value;
      if (!target || pattern === "") return;
      this.#searched = { ...target, pattern };
      fill(this.#results);
      void this.#search(1);
    });
    this.element = h("div", { class: "find-box" }, form, this.#results);
  }

  async #search(fromLine: number): Promise<void> {
    const searched = this.#searched;
    const rpc = this.page.rpc;
    if (!searched || !rpc) return;
    this.#results.querySelector(".find-more")?.remove();
    try {
      const answer = await rpc.call("entry/search", { ...searched, ignoreCase: true, limit: PAGE, fromLine });
      if (this.#searched !== searched) return;
      this.#show(answer, fromLine === 1);
    } catch (error) {
      if (this.#searched === searched) fill(this.#results, h("p", { class: "find-none" }, `Find: ${message(error)}`));
    }
  }

  #show(answer: ResultOf<"entry/search">, first: boolean): void {
    const list = this.#results.querySelector("ol") ?? this.#results.appendChild(h("ol", { class: "find-list" }));
    for (const match of answer.matches) list.append(this.#row(match));
    if (first && answer.matches.length === 0)
      this.#results.append(h("p", { class: "find-none" }, answer.timedOut ? "The search ran out of time before a match." : "No line matches."));
    const next = answer.nextLine;
    if (answer.truncated && next !== undefined) {
      const more = h("button", { type: "button", class: "find-more" }, `more (from line ${next})`);
      more.addEventListener("click", () => void this.#search(next));
      this.#results.append(more);
    }
  }

  #row(match: Match): HTMLElement {
    const button = h("button", { type: "button", "data-line": match.line }, h("span", { class: "find-line" }, `${match.line}`), " ", shown(match.text));
    button.addEventListener("click", () => {
      if (!this.reveal(match.path, match.line))
        this.page.toast(`Line ${match.line} is not in the terminal now (it keeps what it drew, up to 10,000 lines): its text is shown here.`);
    });
    return h("li", null, button);
  }
}
