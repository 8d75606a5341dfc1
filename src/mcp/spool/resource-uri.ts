import { RUN_ALIAS } from "../../protocol/common.js";

/*
 * The addresses spool mcp gives a command's output as an MCP resource, and reads back from a client.
 */

/** Resources one session (resources/subscribe) or one listen (subscriptions/listen) follows at most. */
export const MAX_RESOURCES = 64;

/** A `spool://RUN/PATH` URI of a producer (PATH is its log path, e.g. log://turn_1/sh/ls). */
export const resourceUri = (run: string, path: string) => `spool://${run}/${path}`;

/**
 * RUN and PATH of a `spool://RUN/PATH` URI; null for anything else. PATH is taken as the URI's readers pass it
 * on: percent-encoded (`log%3A%2F%2Fturn_1…`), with the scheme's `//` folded to `/` by URL normalisation
 * (`log:/turn_1/sh/ls`), or without a scheme (`turn_1/sh/ls`: a log path, as a URI's path reads best).
 */
export function parseResourceUri(uri: string): { run: string; path: string } | null {
  if (!uri.startsWith("spool://")) return null;
  const rest = uri.slice("spool://".length);
  const slash = rest.indexOf("/");
  if (slash <= 0 || slash === rest.length - 1) return null;
  let path = rest.slice(slash + 1);
  if (path.includes("%")) {
    try {
      path = decodeURIComponent(path);
    } catch {
      // Not percent-encoding after all: the path as given.
    }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/*/i.exec(path);
  if (scheme) path = `${scheme[1]}://${path.slice(scheme[0].length)}`;
  else if (/^turn_\d+\//.test(path)) path = `log://${path}`;
  return { run: rest.slice(0, slash), path };
}

/** The proposals waiting for a decision: the project's (`spool://proposals`) or one run's (`spool://RUN/proposals`). */
export const proposalsUri = (run?: string) => (run ? `spool://${run}/proposals` : "spool://proposals");

/** Which proposals a proposals URI names: `run` null for the whole project's; null when it is no such URI. */
export function parseProposalsUri(uri: string): { run: string | null } | null {
  if (uri === "spool://proposals") return { run: null };
  const m = /^spool:\/\/([^/]+)\/proposals$/.exec(uri);
  return m && RUN_ALIAS.test(m[1]!) ? { run: m[1]! } : null;
}
