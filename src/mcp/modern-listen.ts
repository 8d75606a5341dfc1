import type { StreamWatch } from "../client/spool-client.js";
import type { Reply } from "./modern-reply.js";
import { CODES, META, ModernError, type ModernRequest } from "./modern-wire.js";
import { THROTTLE_MS } from "./progress.js";
import { parseResourceUri } from "./resource-uri.js";
import type { Session, SpoolSide } from "./spool-side.js";
import { message } from "./text.js";

/*
 * subscriptions/listen (MCP 2026-07-28): one long-lived SSE answer carrying the change notifications the client
 * opted in to, each tagged with the subscription's id (the request's). Spool offers resource updates (a command's
 * output at spool://RUN/PATH, until it ends) and its resource list's changes (a command of the run accepted);
 * its tools never change, and it has no prompts.
 */

/** Resources one listen follows at most. */
const MAX_RESOURCES = 64;

export async function listen(side: SpoolSide, session: Session, reply: Reply, call: ModernRequest, keepAliveMs: number): Promise<void> {
  const filter = (call.params.notifications ?? {}) as { resourcesListChanged?: unknown; resourceSubscriptions?: unknown };
  const uris = Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions.filter((u): u is string => typeof u === "string") : [];
  if (uris.length > MAX_RESOURCES) throw new ModernError(200, CODES.invalidParams, `At most ${MAX_RESOURCES} resourceSubscriptions on one listen`);
  for (const uri of uris) if (!parseResourceUri(uri)) throw new ModernError(200, CODES.invalidParams, `not a Spool resource: ${uri} (spool://RUN/PATH)`);
  const tag = { [META.subscription]: call.id };
  const accepted = { ...(filter.resourcesListChanged === true ? { resourcesListChanged: true } : {}), ...(uris.length ? { resourceSubscriptions: uris } : {}) };
  reply.notify({ method: "notifications/subscriptions/acknowledged", params: { notifications: accepted, _meta: tag } });
  const watches: Promise<StreamWatch | null>[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const updated = (uri: string) => reply.notify({ method: "notifications/resources/updated", params: { uri, _meta: tag } });
  for (const uri of uris) {
    let timer: NodeJS.Timeout | null = null;
    const soon = () => {
      if (timer) return;
      timer = setTimeout(() => {
        if (timer) timers.delete(timer);
        timer = null;
        updated(uri);
      }, THROTTLE_MS);
      timers.add(timer);
    };
    const watching = side
      .target(session, uri)
      .then((t) => session.client.watch({ run: t.run, path: t.path }, () => soon()))
      .then((watch) => {
        void watch.ended.then(() => {
          if (timer) clearTimeout(timer);
          updated(uri);
        });
        return watch;
      })
      .catch((error: unknown) => {
        side.log.warn(`following ${uri}: ${message(error)}`);
        return null;
      });
    watches.push(watching);
  }
  const onResolved = (p: { run: string; decision: string }) => {
    if (accepted.resourcesListChanged && p.run === session.run && p.decision === "accept")
      reply.notify({ method: "notifications/resources/list_changed", params: { _meta: tag } });
  };
  const off = session.client.on("run/resolved", onResolved as never);
  const keepAlive = setInterval(() => reply.keepAlive(), keepAliveMs);
  try {
    // Until the client closes the stream, or the server ends it (its credential went, it shuts down).
    await new Promise<void>((resolve) => {
      if (reply.signal.aborted) return resolve();
      reply.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    clearInterval(keepAlive);
    for (const t of timers) clearTimeout(t);
    off();
    for (const w of watches) await (await w)?.close().catch(() => undefined);
  }
}
