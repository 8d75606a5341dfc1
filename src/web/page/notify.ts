import { pausedWords } from "../../protocol/agent-words.js";
import { h } from "./dom.js";
import { escapeControl } from "./format.js";
import type { Proposal, Run } from "./model.js";

/** A notification's body: the command, escaped, cut to this many characters (a notification shows a few lines). */
const BODY_CHARS = 180;
/** Proposals already announced, so a reconnect that lists them again announces none twice (the oldest are forgotten). */
const REMEMBERED = 500;
/** Set once the page asked for the permission: it asks once, whatever the answer. */
const ASKED_KEY = "spool.notifications.asked";

/** A command cut for a notification: escaped (a control character is shown, never obeyed), on one line, with … when cut. */
export function notificationText(command: string, max = BODY_CHARS): string {
  const one = escapeControl(command).replace(/\s+/g, " ").trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/**
 * Browser notifications for proposals that wait for a decision, and for runs paused at their budget, raised while
 * the page is not looked at (a background tab, a locked phone's browser). The permission is asked for once, from a button the person
 * presses (browsers ask for a gesture); nothing is asked while the page only loads.
 */
export class ProposalNotifier {
  /** The top bar's button that asks for the permission; hidden once asked, or where it cannot be asked. */
  readonly button: HTMLButtonElement;
  readonly #seen = new Set<string>();
  readonly #open: (run: string, project: string) => void;

  /** `open`: what a click on a notification shows (the proposal's run, or the paused run, in its project). */
  constructor(open: (run: string, project: string) => void) {
    this.#open = open;
    this.button = h(
      "button",
      { class: "notify-ask", type: "button", title: "show a notification for each proposal while this page is in the background" },
      "Notify me",
    );
    this.button.addEventListener("click", () => void this.#ask());
    this.#showButton();
  }

  /** A proposal arrived: announced when the page is not in view and the permission was granted, once per proposal. */
  proposal(p: Proposal, project: string): void {
    const key = `${project}\u0000${p.run}\u0000${p.path}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    if (this.#seen.size > REMEMBERED) this.#seen.delete(this.#seen.values().next().value!);
    this.#raise(`Spool: ${notificationText(p.run, 60)} wants to run a command`, `$ ${notificationText(p.producer.command)}`, key, p.run, project);
  }

  /** A run paused at its budget: announced as a proposal is, once per limit it reached. */
  paused(project: string, run: string, reached: NonNullable<Run["paused"]>): void {
    const key = `${project}\u0000${run}\u0000budget ${reached.kind} ${reached.limit}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    if (this.#seen.size > REMEMBERED) this.#seen.delete(this.#seen.values().next().value!);
    this.#raise(`Spool: ${notificationText(run, 60)} paused at its budget`, notificationText(pausedWords(reached)), key, run, project);
  }

  #raise(title: string, body: string, tag: string, run: string, project: string): void {
    if (document.visibilityState === "visible" || !supported() || Notification.permission !== "granted") return;
    const notification = new Notification(title, { body, tag });
    notification.addEventListener("click", () => {
      window.focus();
      this.#open(run, project);
      notification.close();
    });
  }

  async #ask(): Promise<void> {
    localStorage.setItem(ASKED_KEY, "1");
    try {
      await Notification.requestPermission();
    } finally {
      this.#showButton();
    }
  }

  #showButton(): void {
    this.button.hidden = !supported() || Notification.permission !== "default" || localStorage.getItem(ASKED_KEY) !== null;
  }
}

const supported = () => typeof Notification === "function";
