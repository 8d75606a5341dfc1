import type { SpoolClient } from "../../client/spool-client.js";
import { type Role, roleAllows } from "../../protocol/role-rank.js";
import { h } from "./dom.js";
import type { Route } from "./route.js";

/**
 * What the page's routes share with the app that holds them: where the page is, its two connections, which
 * view is current, and how to move and to tell the person something. The app implements it (src/web/page/app.ts).
 */
export interface PageContext {
  /** Where the page is (#/project/run/path). */
  readonly route: Route;
  /** Whether the page chose the route's project itself (the link named none): its queue then keeps the deadlines' order. */
  readonly projectPicked: boolean;
  /** Requests and the project's notifications; null while not connected. */
  readonly rpc: SpoolClient | null;
  /** Output: terminals subscribe on a connection of their own (see App); null while not connected. */
  readonly data: SpoolClient | null;
  /** Whether the page is connected and joined now (not connecting or reconnecting): decisions can be sent. */
  readonly connected: boolean;
  /** Bumped whenever what is shown changes (connection, run): late answers for an older view are dropped. */
  readonly view: number;
  /** Who the page is signed in as (GET /session): the controls its role cannot use are not shown. */
  readonly principal: SignedIn;
  navigate(route: Route, push: boolean): void;
  /** Moves to the route with `patch` applied, as a new history entry. */
  go(patch: Partial<Route>): void;
  toast(text: string, kind?: "info" | "error"): void;
}

/** Who signed the page in: the principal of the credential that minted its code (`spool open`). */
export interface SignedIn {
  name: string;
  role: Role;
}

/**
 * Whether the signed-in principal's role may do what needs `needed` (deciding and aborting need person; cancel, prompt
 * and input need agent): a control it may not use is not drawn. The server refuses it anyway; this only spares a click.
 */
export function may(page: PageContext, needed: Role): boolean {
  return roleAllows(page.principal.role, needed);
}

/**
 * Runs an action a button started: the button is disabled meanwhile, a failure is a toast saying `what` failed.
 * Only what the server or the page says to a person reaches the toast; a fault of the page's own script is logged
 * to the console and told as one, never as its message (`Cannot read properties of null`).
 */
export async function act(page: PageContext, button: HTMLButtonElement | null, what: string, action: () => Promise<unknown>): Promise<void> {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (error) {
    page.toast(`${what}: ${message(error)}`, "error");
  } finally {
    // A button the page took away meanwhile (it went offline) stays as the page left it.
    if (button && !button.dataset.offline) button.disabled = false;
  }
}

/** An error as a person reads it: its message, unless it is a fault of the page's script (a TypeError, say). */
export function message(error: unknown): string {
  if (error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError || error instanceof SyntaxError) {
    console.error(error);
    return "the page failed to do it (its error is in the browser's console); nothing was sent — reload the page and try again";
  }
  return error instanceof Error ? error.message : String(error);
}

/** Not connected: an action that needs the server says so instead of failing on the missing connection. */
export class Offline extends Error {
  constructor() {
    super("the page is not connected to the server (it reconnects by itself); nothing was sent — try again once it says live");
  }
}

/**
 * The run's abort button and the shown producer's cancel button are made once per run/producer and kept across
 * re-renders (which come with every streamed chunk): a button replaced between a press and its release loses
 * the click, in a browser as in a test driving one.
 */
export class KeptButton {
  #kept: { key: string; button: HTMLButtonElement } | null = null;

  constructor(
    readonly action: "abort" | "cancel",
    readonly label: string,
  ) {}

  /** The button for `key` (a run, or a run's producer): the one made before for the same key, else a new one. */
  for(key: string, onClick: (button: HTMLButtonElement) => unknown): HTMLButtonElement {
    if (this.#kept?.key === key) return this.#kept.button;
    const button = h("button", { type: "button", class: "danger", "data-action": this.action }, this.label);
    button.addEventListener("click", () => void onClick(button));
    this.#kept = { key, button };
    return button;
  }
}
