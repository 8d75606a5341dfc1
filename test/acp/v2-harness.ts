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
  const connection = app.connect(stream as unknown as Stream);
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
  };
}

/** The v2 update of a kind, typed. */
export type V2Update<K extends string> = Extract<SessionUpdate, { sessionUpdate: K }>;
export const isKind =
  <K extends string>(kind: K) =>
  (u: SessionUpdate): u is V2Update<K> =>
    u.sessionUpdate === kind;
