import { createHttpStream } from "@agentclientprotocol/sdk/experimental/http-client";
import {
  type ClientConnection,
  client,
  type RequestPermissionRequest,
  type RequestPermissionResponse,
  type SessionUpdate,
  type Stream,
} from "@agentclientprotocol/sdk/experimental/v2";
import { createWebSocketStream } from "@agentclientprotocol/sdk/experimental/ws-client";
import { WebSocket } from "ws";
import type { UrlTransport } from "./url-harness.js";

/** A permission request a v2 client received, with when; the test answers it (or sees it withdrawn). */
export interface V2Ask {
  params: RequestPermissionRequest;
  signal: AbortSignal;
  at: number;
  answer(response: RequestPermissionResponse): void;
}

export type V2Event = { at: number; kind: "update"; sessionId: string; update: SessionUpdate } | { at: number; kind: "permission"; ask: V2Ask };

/** An ACP v2 client (the SDK's experimental v2 ClientApp) on /acp over the SDK's own HTTP or WebSocket client. */
export interface V2Editor {
  connection: ClientConnection;
  events: V2Event[];
  updates(sessionId?: string): { at: number; update: SessionUpdate }[];
  update(match: (u: SessionUpdate) => boolean, timeoutMs?: number): Promise<{ at: number; update: SessionUpdate }>;
  permission(timeoutMs?: number): Promise<V2Ask>;
  /**
   * The session/updates that came on the wire before the answer to this client's latest `method` request, once the
   * client has handled them. The SDK hands an answer to its caller as soon as it reads it, but runs a notification's
   * handlers a few steps later: when both came in one socket read, the answer resolves first. So "the server said it
   * before it answered" is read here by the wire's order, not by what the handlers have recorded when `await` returns.
   * Over WebSocket only: over HTTP the answer and the updates come on different streams, and their order says nothing.
   */
  before(method: string, sessionId?: string, timeoutMs?: number): Promise<{ at: number; update: SessionUpdate }[]>;
}

/** What came on the wire, in its order: how many session/updates had arrived when each answer did. */
interface Wire {
  /** The id of each request this client sent, by method, latest last. */
  sent: Map<string, unknown[]>;
  /** Each answer's id, with the number of session/updates (all sessions) that arrived before it. */
  answers: Map<unknown, number>;
  updates: number;
}

/** The stream with a tap on each side recording the wire's order (the SDK's own messages pass unchanged). */
function tapped(stream: Stream, wire: Wire): Stream {
  const readable = stream.readable.pipeThrough(
    new TransformStream({
      transform(message, controller) {
        const m = message as { id?: unknown; method?: unknown };
        if (m.method === "session/update") wire.updates++;
        else if (m.method === undefined && m.id !== undefined) wire.answers.set(m.id, wire.updates);
        controller.enqueue(message);
      },
    }),
  );
  const writer = stream.writable.getWriter();
  const writable = new WritableStream({
    write(message) {
      const m = message as { id?: unknown; method?: unknown };
      if (typeof m.method === "string" && m.id !== undefined) wire.sent.set(m.method, [...(wire.sent.get(m.method) ?? []), m.id]);
      return writer.write(message);
    },
    close: () => writer.close(),
    abort: (reason) => writer.abort(reason),
  });
  return { readable, writable } as Stream;
}

export function v2EditorByUrl(port: number, transport: UrlTransport, token: string): V2Editor {
  const headers = { Authorization: `Bearer ${token}` };
  const stream =
    transport === "http"
      ? createHttpStream(`http://127.0.0.1:${port}/acp`, { headers })
      : createWebSocketStream(`ws://127.0.0.1:${port}/acp`, { headers, WebSocket: WebSocket as never });
  const events: V2Event[] = [];
  const waiters: (() => void)[] = [];
  const changed = () => {
    for (const w of waiters.splice(0)) w();
  };
  const taken = new Set<V2Ask>();
  const waitFor = <T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; events:\n${JSON.stringify(events, null, 1).slice(-6000)}`)), timeoutMs);
      const look = () => {
        const found = find();
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        } else waiters.push(look);
      };
      look();
    });
  const app = client({ name: "test-v2-editor" })
    .onNotification("session/update", ({ params }) => {
      events.push({ at: Date.now(), kind: "update", sessionId: params.sessionId, update: params.update });
      changed();
    })
    .onRequest(
      "session/request_permission",
      ({ params, signal }) =>
        new Promise<RequestPermissionResponse>((resolve) => {
          events.push({ at: Date.now(), kind: "permission", ask: { params, signal, at: Date.now(), answer: resolve } });
          changed();
        }),
    );
  const wire: Wire = { sent: new Map(), answers: new Map(), updates: 0 };
  const connection = app.connect(tapped(stream as unknown as Stream, wire));
  const updates = (sessionId?: string) =>
    events.flatMap((e) => (e.kind === "update" && (!sessionId || e.sessionId === sessionId) ? [{ at: e.at, update: e.update }] : []));
  return {
    connection,
    events,
    updates,
    update: (match, timeoutMs = 20_000) => waitFor(() => updates().find((u) => match(u.update)), timeoutMs, "a matching session/update"),
    permission: (timeoutMs = 20_000) =>
      waitFor(
        () => {
          const ask = events.find((e): e is Extract<V2Event, { kind: "permission" }> => e.kind === "permission" && !taken.has(e.ask))?.ask;
          if (ask) taken.add(ask);
          return ask;
        },
        timeoutMs,
        "a permission request",
      ),
    before: (method, sessionId, timeoutMs = 20_000) => {
      const id = wire.sent.get(method)?.at(-1);
      const arrived = id === undefined ? undefined : wire.answers.get(id);
      if (arrived === undefined) return Promise.reject(new Error(`no answer to a ${method} request of this client came`));
      // The client handles notifications in the order they came: the first `arrived` handled are those.
      return waitFor(
        () => {
          const handled = events.flatMap((e) => (e.kind === "update" ? [e] : []));
          return handled.length >= arrived ? handled.slice(0, arrived).filter((e) => !sessionId || e.sessionId === sessionId) : undefined;
        },
        timeoutMs,
        `the ${arrived} session/updates that came before the answer to ${method}`,
      ).then((handled) => handled.map((e) => ({ at: e.at, update: e.update })));
    },
  };
}

/** The v2 update of a kind, typed. */
export type V2Update<K extends string> = Extract<SessionUpdate, { sessionUpdate: K }>;
export const isKind =
  <K extends string>(kind: K) =>
  (u: SessionUpdate): u is V2Update<K> =>
    u.sessionUpdate === kind;
