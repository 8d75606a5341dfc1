import { ProtocolError, ProtocolErrorCode, type Server } from "@modelcontextprotocol/server";
import { MAX_RESOURCES, parseProposalsUri, parseResourceUri } from "../spool/resource-uri.js";
import { followOutput, followProposals, listResources, readResource, resourceTemplates } from "../spool/resources.js";
import type { SpoolSide } from "../spool/spool-side.js";
import { ToolFailure } from "../spool/text.js";

/*
 * The resources on a 2025-11-25 session's server: the same functions 2026-07-28 answers with
 * (src/mcp/spool/resources.ts), and the session's subscriptions (resources/subscribe), each followed until it is
 * unsubscribed or the session ends. (2026-07-28 follows what a subscriptions/listen asks: stateless/listen-watch.ts.)
 */

/** A followed resource: what stops following it. */
interface Subscription {
  stop: () => Promise<void>;
}

/**
 * Registers the resources (a command's output at spool://RUN/PATH, listed for this connection's run) and their
 * subscriptions; `close` stops following them all.
 */
export function registerResources(server: Server, side: SpoolSide): { close(): Promise<void> } {
  /** Resource subscriptions: URI → the watch that sends `notifications/resources/updated`. */
  const subscriptions = new Map<string, Subscription>();
  const unsubscribe = async (uri: string, sub: Subscription) => {
    subscriptions.delete(uri);
    await sub.stop();
  };
  server.registerCapabilities({ resources: { subscribe: true, listChanged: true } });
  server.setRequestHandler("resources/list", async () => listResources(side));
  server.setRequestHandler("resources/templates/list", async () => resourceTemplates(side.options.extras));
  server.setRequestHandler("resources/read", async (request) => readResource(side, request.params.uri));
  server.setRequestHandler("resources/subscribe", async (request) => {
    const session = await side.ready();
    const uri = request.params.uri;
    if (subscriptions.has(uri)) return {};
    // Each subscription keeps a watch (and its listeners) until unsubscribed: a session holds a bounded number.
    if (subscriptions.size >= MAX_RESOURCES)
      throw new ProtocolError(
        ProtocolErrorCode.InvalidParams,
        `At most ${MAX_RESOURCES} resource subscriptions on one session: unsubscribe from one first (resources/unsubscribe)`,
        { limit: MAX_RESOURCES },
      );
    if (parseProposalsUri(uri)) {
      const off = followProposals(session, [uri], (changed) => server.sendResourceUpdated({ uri: changed }).catch(() => undefined));
      subscriptions.set(uri, { stop: async () => off() });
      return {};
    }
    // An added resource (extras.ts) never changes: subscribed to, it is never updated.
    if (side.options.extras?.resources?.read(uri)) return {};
    const parsed = parseResourceUri(uri);
    if (!parsed)
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `not a Spool resource: ${uri} (spool://RUN/PATH, spool://RUN/proposals or spool://proposals)`);
    // Its place taken before the first await: subscribes that arrive meanwhile (the SDK runs them at once) count it, and
    // one of the same URI finds it there.
    let stop: (() => Promise<void>) | null = null;
    const placeholder: Subscription = { stop: async () => stop?.() };
    subscriptions.set(uri, placeholder);
    let target: { run: string; path: string };
    try {
      target = await side.target(session, uri);
    } catch (error) {
      if (subscriptions.get(uri) === placeholder) subscriptions.delete(uri);
      if (error instanceof ToolFailure) throw new ProtocolError(ProtocolErrorCode.ResourceNotFound, `Resource not found: ${uri}`, { uri });
      throw error;
    }
    const followed = followOutput(side, session, Promise.resolve(target), uri, () => server.sendResourceUpdated({ uri }).catch(() => undefined));
    stop = followed.stop;
    // Unsubscribed (or the session closed) while it was looked up: it is followed no further.
    if (subscriptions.get(uri) !== placeholder) await followed.stop();
    await followed.started;
    return {};
  });
  server.setRequestHandler("resources/unsubscribe", async (request) => {
    const sub = subscriptions.get(request.params.uri);
    if (sub) await unsubscribe(request.params.uri, sub);
    return {};
  });
  return {
    async close() {
      for (const [uri, sub] of subscriptions) await unsubscribe(uri, sub);
    },
  };
}
