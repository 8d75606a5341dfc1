import type { ChildProcess } from "node:child_process";
import { Readable, Writable } from "node:stream";
import {
  type ClientConnection,
  client,
  ndJsonStream,
  PROTOCOL_VERSION,
  type RequestPermissionRequest,
  type RequestPermissionResponse,
  type SessionNotification,
  type SessionUpdate,
  type Stream,
} from "@agentclientprotocol/sdk";
import { spawnSpoolChild } from "../helpers/process.js";

/** A permission request the editor received; the test answers it (or sees it withdrawn). */
export interface PermissionAsk {
  params: RequestPermissionRequest;
  /** Aborted when the agent withdraws the request (`$/cancel_request`). */
  signal: AbortSignal;
  /** Where in the editor's log of events it arrived. */
  at: number;
  answer(response: RequestPermissionResponse): void;
}

type Event = { kind: "update"; update: SessionUpdate; sessionId: string } | { kind: "permission"; ask: PermissionAsk };

/** `spool acp` as a real subprocess, driven by the ACP SDK's own client over its stdio. */
export interface AcpProcess {
  child: ChildProcess;
  connection: ClientConnection;
  /** Everything the editor received, in order. */
  events: Event[];
  updates(sessionId?: string): SessionUpdate[];
  /** Resolves with the first update (from index `from` of `events`) that matches. */
  update(match: (u: SessionUpdate) => boolean, from?: number, timeoutMs?: number): Promise<SessionUpdate>;
  /** Resolves with the next permission request not taken yet. */
  permission(timeoutMs?: number): Promise<PermissionAsk>;
  stderr(): string;
  exit: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface AcpOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** What the editor says about itself at initialize. */
  name?: string;
  terminal?: boolean;
  /** The node that runs it (default: this one). */
  node?: string;
}

export function spawnAcp(options: AcpOptions = {}): AcpProcess {
  // stdout is the ACP connection's: the SDK reads it.
  const acp = spawnSpoolChild(["acp", ...(options.args ?? [])], options.env, { readStdout: false, ...(options.node ? { node: options.node } : {}) });
  const { child, exit } = acp;
  const stream = ndJsonStream(Writable.toWeb(child.stdin!) as WritableStream<Uint8Array>, Readable.toWeb(child.stdout!) as ReadableStream<Uint8Array>);
  return { ...editorOn(stream, () => `stderr:\n${acp.stderr()}`), child, stderr: acp.stderr, exit, stop: acp.stop };
}

/** An editor (the ACP SDK's client app) on an ACP stream: it keeps every update and permission request it gets. */
export type AcpEditor = Pick<AcpProcess, "connection" | "events" | "updates" | "update" | "permission">;

export function editorOn(stream: Stream, context: () => string = () => ""): AcpEditor {
  const events: Event[] = [];
  const waiters: (() => void)[] = [];
  const changed = () => {
    for (const w of waiters.splice(0)) w();
  };
  const taken = new Set<PermissionAsk>();
  const waitFor = <T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}; events:\n${JSON.stringify(events, null, 1).slice(-6000)}\n${context()}`)),
        timeoutMs,
      );
      const look = () => {
        const found = find();
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        } else waiters.push(look);
      };
      look();
    });

  const app = client({ name: "test-editor" })
    .onNotification("session/update", ({ params }: { params: SessionNotification }) => {
      events.push({ kind: "update", update: params.update, sessionId: params.sessionId });
      changed();
    })
    .onRequest(
      "session/request_permission",
      ({ params, signal }) =>
        new Promise<RequestPermissionResponse>((resolve) => {
          const ask: PermissionAsk = { params, signal, at: events.length, answer: resolve };
          events.push({ kind: "permission", ask });
          changed();
        }),
    );
  const connection = app.connect(stream);
  return {
    connection,
    events,
    updates: (sessionId) => events.flatMap((e) => (e.kind === "update" && (!sessionId || e.sessionId === sessionId) ? [e.update] : [])),
    update: (match, from = 0, timeoutMs = 20_000) =>
      waitFor(
        () => events.slice(from).find((e): e is Extract<Event, { kind: "update" }> => e.kind === "update" && match(e.update))?.update,
        timeoutMs,
        "a matching session/update",
      ),
    permission: (timeoutMs = 20_000) =>
      waitFor(
        () => {
          const ask = events.find((e): e is Extract<Event, { kind: "permission" }> => e.kind === "permission" && !taken.has(e.ask))?.ask;
          if (ask) taken.add(ask);
          return ask;
        },
        timeoutMs,
        "a permission request",
      ),
  };
}

/** `initialize` as an editor sends it; with `terminal`, it declares Zed's `_meta.terminal_output`. */
export function initialize(acp: Pick<AcpProcess, "connection">, options: { name?: string; terminal?: boolean } = {}) {
  return acp.connection.agent.request("initialize", {
    protocolVersion: PROTOCOL_VERSION,
    clientCapabilities: {
      fs: { readTextFile: false, writeTextFile: false },
      terminal: false,
      ...(options.terminal ? { _meta: { terminal_output: true } } : {}),
    },
    clientInfo: { name: options.name ?? "test-editor", version: "1.0.0" },
  });
}

/** The text of every agent_message_chunk, joined. */
export function agentText(updates: SessionUpdate[]): string {
  return updates.map((u) => (u.sessionUpdate === "agent_message_chunk" && u.content.type === "text" ? u.content.text : "")).join("");
}
