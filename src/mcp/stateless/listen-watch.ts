import type { ServerNotifier } from "@modelcontextprotocol/server";
import { MAX_RESOURCES, parseProposalsUri, parseResourceUri } from "../spool/resource-uri.js";
import { followOutput, followProposals } from "../spool/resources.js";
import type { Session, SpoolSide } from "../spool/spool-side.js";

/*
 * What a subscriptions/listen (MCP 2026-07-28) is told of, Spool's side: the SDK serves the stream (the ack, the
 * subscription id on each notification, keepalives, the completion when the server ends it) and this watches
 * Spool for it, publishing to the SDK's notifier. Spool offers resource updates (a command's output at
 * spool://RUN/PATH, until it ends; the proposals waiting for a decision at spool://RUN/proposals or, the
 * project's, spool://proposals, as one appears or is decided) and its resource list's changes (a command of the
 * run accepted); its tools never change, and it has no prompts. One watch per resource however many listens of
 * the connection follow it (the notifier reaches each listen that asked for the resource, once).
 */

/** The resources a listen's params ask for, or why they are refused (Invalid Params). */
export function listenedUris(params: unknown): { uris: string[]; listChanged: boolean } | { refused: string } {
  const filter = ((params as { notifications?: unknown } | null)?.notifications ?? {}) as { resourcesListChanged?: unknown; resourceSubscriptions?: unknown };
  const uris = Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions.filter((u): u is string => typeof u === "string") : [];
  if (uris.length > MAX_RESOURCES) return { refused: `At most ${MAX_RESOURCES} resourceSubscriptions on one listen` };
  for (const uri of uris)
    if (!parseProposalsUri(uri) && !parseResourceUri(uri))
      return { refused: `not a Spool resource: ${uri} (spool://RUN/PATH, spool://RUN/proposals or spool://proposals)` };
  return { uris, listChanged: filter.resourcesListChanged === true };
}

interface Counted {
  count: number;
  stop: () => void;
}

/** One kept connection's watches, counted by the listens that need them. */
export class ListenWatches {
  readonly #watches = new Map<string, Counted>();

  constructor(
    private readonly side: SpoolSide,
    private readonly notify: Pick<ServerNotifier, "resourceUpdated" | "resourcesChanged">,
  ) {}

  /** Watches what one listen asks for; the returned function lets go of it. */
  acquire(session: Session, uris: string[], listChanged: boolean): () => void {
    const keys = [...new Set(uris), ...(listChanged ? [LIST] : [])];
    for (const key of keys) {
      const found = this.#watches.get(key);
      if (found) found.count += 1;
      else this.#watches.set(key, { count: 1, stop: this.#start(session, key) });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const key of keys) {
        const found = this.#watches.get(key);
        if (!found || --found.count > 0) continue;
        this.#watches.delete(key);
        found.stop();
      }
    };
  }

  #start(session: Session, key: string): () => void {
    if (key === LIST) {
      // The run's resource list changes when a command of it is accepted (its output becomes a resource).
      const onResolved = (p: { run: string; decision: string }) => {
        if (p.run === session.run && p.decision === "accept") this.notify.resourcesChanged();
      };
      return session.client.on("run/resolved", onResolved as never);
    }
    const updated = (uri: string) => this.notify.resourceUpdated(uri);
    if (parseProposalsUri(key)) return followProposals(session, [key], updated);
    const output = followOutput(this.side, session, this.side.target(session, key), key, () => updated(key));
    return () => void output.stop();
  }
}

/** The key of the resource list's watch (no resource URI looks like it). */
const LIST = "resources/list_changed";
