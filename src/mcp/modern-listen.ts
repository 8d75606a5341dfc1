import type { Reply } from "./modern-reply.js";
import { CODES, META, ModernError, type ModernRequest } from "./modern-wire.js";
import { parseProposalsUri, parseResourceUri } from "./resource-uri.js";
import { followOutput, followProposals } from "./resources.js";
import type { Session, SpoolSide } from "./spool-side.js";

/*
 * subscriptions/listen (MCP 2026-07-28): one long-lived SSE answer carrying the change notifications the client
 * opted in to, each tagged with the subscription's id (the request's). Spool offers resource updates (a command's
 * output at spool://RUN/PATH, until it ends; the proposals waiting for a decision at spool://RUN/proposals or, the
 * project's, spool://proposals, as one appears or is decided) and its resource list's changes (a command of the
 * run accepted); its tools never change, and it has no prompts. Over stdio the notifications share the one
 * output with everything else: the subscription id is how a client tells them apart. A listen the server ends
 * (it shuts down, the caller's credential goes) is answered with a completion result carrying its id; one the
 * client cancels, not at all.
 */

/** Resources one listen follows at most. */
const MAX_RESOURCES = 64;

type Updated = (uri: string) => void;

export async function listen(side: SpoolSide, session: Session, reply: Reply, call: ModernRequest, keepAliveMs: number): Promise<void> {
  const filter = (call.params.notifications ?? {}) as { resourcesListChanged?: unknown; resourceSubscriptions?: unknown };
  const uris = Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions.filter((u): u is string => typeof u === "string") : [];
  if (uris.length > MAX_RESOURCES) throw new ModernError(200, CODES.invalidParams, `At most ${MAX_RESOURCES} resourceSubscriptions on one listen`);
  for (const uri of uris)
    if (!parseProposalsUri(uri) && !parseResourceUri(uri))
      throw new ModernError(200, CODES.invalidParams, `not a Spool resource: ${uri} (spool://RUN/PATH, spool://RUN/proposals or spool://proposals)`);
  const tag = { [META.subscription]: call.id };
  const accepted = { ...(filter.resourcesListChanged === true ? { resourcesListChanged: true } : {}), ...(uris.length ? { resourceSubscriptions: uris } : {}) };
  reply.notify({ method: "notifications/subscriptions/acknowledged", params: { notifications: accepted, _meta: tag } });
  // Ended by the server (shutting down, the credential gone): a completion result, tagged, then the stream closes
  // (the spec's graceful closure); ended by the client, nothing.
  reply.closesWith({ _meta: tag });
  const updated: Updated = (uri) => reply.notify({ method: "notifications/resources/updated", params: { uri, _meta: tag } });
  const outputs = uris.filter((uri) => !parseProposalsUri(uri)).map((uri) => followOutput(side, session, side.target(session, uri), uri, () => updated(uri)));
  const offProposals = followProposals(session, uris, updated);
  const onResolved = (p: { run: string; decision: string }) => {
    if (accepted.resourcesListChanged && p.run === session.run && p.decision === "accept")
      reply.notify({ method: "notifications/resources/list_changed", params: { _meta: tag } });
  };
  const off = session.client.on("run/resolved", onResolved as never);
  const keepAlive = setInterval(() => reply.keepAlive(), keepAliveMs);
  try {
    // Until the client cancels it (HTTP: closes the stream; stdio: notifications/cancelled), or the server ends it.
    await new Promise<void>((resolve) => {
      if (reply.signal.aborted) return resolve();
      reply.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    clearInterval(keepAlive);
    off();
    offProposals();
    for (const output of outputs) await output.stop();
  }
}
