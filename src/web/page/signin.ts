import type { SignedIn } from "./context.js";
import { fill, h } from "./dom.js";
import { escapeControl } from "./format.js";
import { errorText, keepKey, type SessionInfo } from "./session.js";

/** What a sign-in link did: the page is signed in (with something to tell, or not), or it is not (and why). */
export type LinkOutcome = { signedIn: true; note: string | null } | { signedIn: false; reason: string; elsewhere: Elsewhere | null };

/**
 * Where a link's code works: the server this one knows made it (a server sharing its database), with the link again
 * at its address; or (`link` null) only the name the link itself gives, which nobody vouches for, so nothing is offered.
 */
export interface Elsewhere {
  host: string;
  link: string | null;
}

/**
 * A code refused by this server: its words, whether another server made it (421), and (`server`) that server's
 * address when this server knows it (a server sharing its database made it); null: none it knows.
 */
interface Refusal {
  error: string;
  elsewhere: boolean;
  server: URL | null;
}

const postJson = (path: string, body: unknown) => fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

/**
 * Takes a sign-in link's code (#code=…). A page not signed in pairs with it. A page already signed in keeps its device
 * unless the person chooses otherwise: a link for the same principal is spent and changes nothing; one for another
 * principal asks first, naming both with their roles; one another server made asks whether to go to that server,
 * naming both servers, when this server knows it (a server sharing its database made the code: the server names it,
 * never the link); a name only the link gives is said to come from the link, and nothing is offered; a bogus, spent or
 * expired one is said so. `fragment`: the link's other parts (`server`, what the link says made the code; `project`).
 */
export async function takeLink(root: HTMLElement, code: string, fragment: URLSearchParams, current: SessionInfo | null): Promise<LinkOutcome> {
  const named = linkServer(fragment);
  if (current === null) {
    const refused = await pair(code);
    return refused === null
      ? { signedIn: true, note: null }
      : { signedIn: false, reason: refused.error, elsewhere: refused.elsewhere ? elsewhereOf(refused.server, named, code, fragment) : null };
  }
  const now = `you are still signed in as ${current.principal.name} (${current.principal.role})`;
  const peek = await postJson("/session/peek", { code });
  if (peek.status === 421) {
    const refusal = await refusalOf(peek);
    const there = refusal.server;
    if (there === null) return { signedIn: true, note: named ? `${onlyNamed(named.host)}: ${now} here.` : `${refusal.error}: ${now}.` };
    const choice = await ask(root, serverQuestion(current.principal, there));
    if (choice === "switch") {
      location.assign(linkTo(there, code, fragment));
      // The page is leaving for the other server: nothing more happens here.
      return await new Promise<never>(() => {});
    }
    return { signedIn: true, note: `The link was for the server at ${there.host}: ${now} here.` };
  }
  if (!peek.ok) return { signedIn: true, note: `${await errorText(peek)}: ${now}.` };
  const { principal } = (await peek.json()) as { principal: SignedIn };
  if (principal.name === current.principal.name && principal.role === current.principal.role) {
    // This browser is that principal's device already: the code is spent, nothing else changes.
    void postJson("/session/peek", { code, spend: true }).catch(() => undefined);
    return { signedIn: true, note: null };
  }
  const choice = await ask(root, principalQuestion(current.principal, principal));
  if (choice === "keep") return { signedIn: true, note: `The link was for ${principal.name} (${principal.role}): ${now}.` };
  const refused = await pair(code);
  return { signedIn: true, note: refused === null ? null : `${refused.error}: ${now}.` };
}

/** Trades the code for a device of its own; why it was refused, else null. */
async function pair(code: string): Promise<Refusal | null> {
  const response = await postJson("/session", { code });
  if (!response.ok) return await refusalOf(response);
  keepKey(String(((await response.json()) as { key?: unknown }).key ?? ""));
  return null;
}

/** A refused answer: its words, and for a 421 the server that made the code, when this server names one. */
async function refusalOf(response: Response): Promise<Refusal> {
  let body: { error?: unknown; server?: unknown } = {};
  try {
    body = (await response.json()) as typeof body;
  } catch {
    // no JSON: its status says it
  }
  const error = typeof body.error === "string" ? body.error : response.statusText;
  const server = response.status === 421 && typeof body.server === "string" ? origin(body.server) : null;
  return { error, elsewhere: response.status === 421, server };
}

/** The server a link names as its code's maker (`server=ORIGIN`), when it is another than this page's (http or https only). */
function linkServer(fragment: URLSearchParams): URL | null {
  const named = fragment.get("server");
  return named ? origin(named) : null;
}

/** `text` as another server's page (its origin, http or https), or null. */
function origin(text: string): URL | null {
  if (!URL.canParse(text)) return null;
  const url = new URL(text);
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.origin === location.origin) return null;
  return new URL("/", url.origin);
}

/** Where the code works: the server this one named, else (offering nothing) the name the link gives; null: neither. */
function elsewhereOf(server: URL | null, named: URL | null, code: string, fragment: URLSearchParams): Elsewhere | null {
  if (server) return { host: server.host, link: linkTo(server, code, fragment) };
  return named ? { host: named.host, link: null } : null;
}

/** What a page says of a server only the link names. */
const onlyNamed = (host: string) =>
  `The link says the server at ${host} made it. That name comes from the link, not from this server, which knows no Spool server there (none shares its database), so the page does not go there`;

/** The link again, on the server that made its code. */
const linkTo = (there: URL, code: string, fragment: URLSearchParams) => {
  const again = new URLSearchParams({ code });
  for (const part of ["project", "root"]) {
    const value = fragment.get(part);
    if (value) again.set(part, value);
  }
  return `${there.href}#${again}`;
};

interface Question {
  title: string;
  text: (string | HTMLElement)[];
  keep: string;
  change: string;
}

function principalQuestion(current: SignedIn, offered: SignedIn): Question {
  return {
    title: "Sign in as someone else?",
    text: [
      "This page is signed in as ",
      h("strong", { "data-current": current.name }, `${escapeControl(current.name)} (${current.role})`),
      ". The link you opened signs it in as ",
      h("strong", { "data-offered": offered.name }, `${escapeControl(offered.name)} (${offered.role})`),
      ": what you do next would be done, and seen, as them.",
    ],
    keep: `Stay ${escapeControl(current.name)}`,
    change: `Sign in as ${escapeControl(offered.name)}`,
  };
}

function serverQuestion(current: SignedIn, there: URL): Question {
  return {
    title: "Go to another server?",
    text: [
      "This page is signed in on ",
      h("strong", { "data-current-server": location.host }, location.host),
      " as ",
      h("strong", { "data-current": current.name }, `${escapeControl(current.name)} (${current.role})`),
      ". The link you opened was made by another Spool server, ",
      h("strong", { "data-offered-server": there.host }, there.host),
      ": its code signs in only there, as whoever made it.",
    ],
    keep: `Stay on ${location.host}`,
    change: `Go to ${there.host}`,
  };
}

/** Asks whether to keep what the page is or take what the link offers; keeping is the default (focused). */
function ask(root: HTMLElement, question: Question): Promise<"keep" | "switch"> {
  return new Promise((resolve) => {
    const done = (choice: "keep" | "switch") => {
      dialog.remove();
      resolve(choice);
    };
    const keep = h("button", { type: "button", class: "primary", "data-choice": "keep", onclick: () => done("keep") }, question.keep);
    const change = h("button", { type: "button", "data-choice": "switch", onclick: () => done("switch") }, question.change);
    const dialog = h(
      "div",
      { class: "switch-ask", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "switch-title" },
      h(
        "div",
        { class: "switch-box" },
        h("h2", { id: "switch-title" }, question.title),
        h("p", null, ...question.text),
        h("div", { class: "switch-actions" }, keep, change),
      ),
    );
    fill(root, dialog);
    keep.focus();
  });
}

/** The page of a browser that is not signed in: why, and how to pair it (or, for another server's link, where to open it). */
export function signedOutView(reason: string, elsewhere: Elsewhere | null = null): HTMLElement {
  return h(
    "div",
    { class: "signed-out" },
    h("h1", null, "Spool"),
    h("p", { class: "reason" }, ...withCode(reason || "This device is not paired.")),
    elsewhere?.link
      ? h("p", null, h("a", { class: "elsewhere", href: elsewhere.link }, `Open the link on ${elsewhere.host}`), ", the server that made it.")
      : elsewhere
        ? h(
            "p",
            { class: "link-named", "data-link-named": elsewhere.host },
            `${onlyNamed(elsewhere.host)}. Open it there yourself only if you trust where the link came from.`,
          )
        : null,
    h(
      "p",
      null,
      "To pair this browser, run ",
      h("code", null, "spool open --qr"),
      " on the machine that runs the server and scan the code with this device's camera (or open the link ",
      h("code", null, "spool open"),
      " prints: it works once, for a minute). It then stays signed in, across restarts, until you unpair it.",
    ),
  );
}

/** The server's words with `…` spans as code elements (the server writes commands that way), never as literal backticks. */
function withCode(text: string): (string | HTMLElement)[] {
  return text.split("`").map((part, i) => (i % 2 === 1 ? h("code", null, part) : part));
}
