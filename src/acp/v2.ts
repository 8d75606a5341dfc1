import { isAbsolute } from "node:path";
import type * as v1 from "@agentclientprotocol/sdk";
import {
  type AgentApp,
  type AgentContext,
  agent,
  type InitializeResponse,
  RequestError,
  type RequestPermissionRequest,
  type SessionConfigOption,
  type SessionUpdate,
} from "@agentclientprotocol/sdk/experimental/v2";
import type { SpoolNotifications } from "../protocol/notifications.js";
import { SERVER_VERSION } from "../version.js";
import type { Bridge } from "./bridge.js";
import { promptText } from "./content.js";
import { acpError } from "./scope.js";
import { type AcpSession, promptMessageId } from "./session.js";
import { COMPACTION_META, type ForegroundState, type PermissionAbout } from "./updates.js";

/*
 * ACP v2 (a draft, offered where the client negotiates it; v1 stays the default): the same sessions, turns and
 * updates as v1 (bridge.ts, session.ts), encoded for v2 at the edge. A command is an agent-owned terminal
 * (`terminal_update` with its command and absolute cwd, `terminal_output_chunk` as its output comes, its exit
 * status), a permission request's subject is the command, `state_update` tells the session's foreground state, and
 * a prompt is answered once the run took it.
 */

export const V2_PROTOCOL_VERSION = 2;

const utf8base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** The terminal metadata the v1 encoding carries in a tool call's `_meta` (Zed's keys, and the v2 snapshot). */
interface TerminalMeta {
  terminal_info?: { terminal_id: string; cwd?: string };
  terminal_output?: { terminal_id: string; data: string };
  terminal_exit?: { terminal_id: string; exit_code: number | null; signal: string | null };
  terminal_snapshot?: { terminal_id: string; data: string };
}

/** `_meta` without the keys the encoding turned into v2 updates; undefined when nothing else is left. */
function otherMeta(meta: Record<string, unknown> | null | undefined): Record<string, unknown> | undefined {
  if (!meta) return undefined;
  const { terminal_info: _i, terminal_output: _o, terminal_exit: _e, terminal_snapshot: _s, ...rest } = meta;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

/**
 * Turns a session's v1 updates into v2 ones. Message chunks get the message ids v2 requires (a new one whenever
 * something else came between); a tool call's terminal metadata becomes the terminal's own updates.
 */
export class V2Encoder {
  readonly #last = new Map<string, { kind: string; messageId: string }>();
  #next = 0;

  /** `mayCancel`: a running terminal advertises `terminal/cancel` (the editor's principal may stop commands). */
  constructor(private readonly mayCancel: boolean) {}

  encode(sessionId: string, update: v1.SessionUpdate): SessionUpdate[] {
    const compaction = update._meta?.[COMPACTION_META] as SpoolNotifications["run/compaction"] | undefined;
    if (compaction) return [compactionV2(compaction)];
    switch (update.sessionUpdate) {
      case "agent_message_chunk":
      case "user_message_chunk":
      case "agent_thought_chunk": {
        const last = this.#last.get(sessionId);
        const messageId = update.messageId ?? (last?.kind === update.sessionUpdate ? last.messageId : `${update.sessionUpdate.split("_")[0]}-${++this.#next}`);
        this.#last.set(sessionId, { kind: update.sessionUpdate, messageId });
        const { sessionUpdate, content, _meta } = update;
        return [{ sessionUpdate, messageId, content: content as never, ...(_meta ? { _meta } : {}) } as SessionUpdate];
      }
      case "tool_call":
      case "tool_call_update": {
        this.#last.delete(sessionId);
        return this.#toolCall(update);
      }
      case "session_info_update":
        return [update as SessionUpdate];
      case "config_option_update":
        return [{ sessionUpdate: "config_option_update", configOptions: configOptionsV2(update.configOptions) }];
      default:
        // Nothing else of v1 is sent by Spool's sessions (modes are a config option in v2).
        return [];
    }
  }

  #toolCall(update: Extract<v1.SessionUpdate, { sessionUpdate: "tool_call" | "tool_call_update" }>): SessionUpdate[] {
    const out: SessionUpdate[] = [];
    const meta = (update._meta ?? {}) as TerminalMeta;
    const { sessionUpdate: _kind, _meta, ...fields } = update;
    const raw = (update.rawInput ?? {}) as { command?: unknown };
    if (meta.terminal_info) {
      out.push({
        sessionUpdate: "terminal_update",
        terminalId: meta.terminal_info.terminal_id,
        ...(typeof raw.command === "string" ? { command: raw.command } : {}),
        ...(meta.terminal_info.cwd ? { cwd: meta.terminal_info.cwd } : {}),
      });
    }
    if (meta.terminal_snapshot)
      out.push({
        sessionUpdate: "terminal_update",
        terminalId: meta.terminal_snapshot.terminal_id,
        output: { data: utf8base64(meta.terminal_snapshot.data) },
        ...(this.mayCancel ? { capabilities: { cancel: {} } } : {}),
      });
    if (meta.terminal_output)
      out.push({ sessionUpdate: "terminal_output_chunk", terminalId: meta.terminal_output.terminal_id, data: utf8base64(meta.terminal_output.data) });
    if (meta.terminal_exit) {
      out.push({
        sessionUpdate: "terminal_update",
        terminalId: meta.terminal_exit.terminal_id,
        exitStatus: { exitCode: meta.terminal_exit.exit_code, signal: meta.terminal_exit.signal },
        capabilities: null,
      });
    }
    const rest = otherMeta(_meta);
    // v2 tells a cancelled tool call from a failed one.
    if (fields.status === "failed" && (fields.rawOutput as { status?: unknown } | undefined)?.status === "cancelled")
      (fields as { status: string }).status = "cancelled";
    // The tool call itself, when the update says anything of it besides its terminal's output.
    if (Object.keys(fields).length > 1 || rest)
      out.push({ sessionUpdate: "tool_call_update", ...(fields as object), ...(rest ? { _meta: rest } : {}) } as SessionUpdate);
    return out;
  }
}

/** A compaction as v2 tells it: `compaction_update` as it starts and ends, `compaction_summary_chunk` as its summary streams. */
export function compactionV2(p: SpoolNotifications["run/compaction"]): SessionUpdate {
  const compactionId = `${p.run}/${p.id}`;
  if (p.phase === "chunk") return { sessionUpdate: "compaction_summary_chunk", compactionId, content: { type: "text", text: p.delta ?? "" } };
  if (p.phase === "started") return { sessionUpdate: "compaction_update", compactionId, status: "in_progress", _meta: { spool: { reason: p.reason } } };
  if (p.phase === "failed") return { sessionUpdate: "compaction_update", compactionId, status: "failed", error: p.error ?? null };
  return {
    sessionUpdate: "compaction_update",
    compactionId,
    status: "completed",
    _meta: { spool: { reason: p.reason, replaced: p.replaced, tokensBefore: p.tokensBefore, tokensAfter: p.tokensAfter } },
  };
}

/** v1's config options in v2's shape (`configId` for `id`). */
export function configOptionsV2(options: v1.SessionConfigOption[]): SessionConfigOption[] {
  return options.map(({ id, ...option }) => ({ ...option, configId: id }) as SessionConfigOption);
}

/** The v2 permission request for a v1 one: the command as its subject, and the facts every client shows as its description. */
export function permissionV2(params: v1.RequestPermissionRequest, about: PermissionAbout): RequestPermissionRequest {
  if (about.subject === "tool_call") {
    return {
      sessionId: params.sessionId,
      title: params.toolCall.title ?? about.facts,
      description: about.facts,
      subject: { type: "tool_call", toolCall: { toolCallId: params.toolCall.toolCallId, title: params.toolCall.title ?? null, status: "pending" } },
      options: params.options,
    };
  }
  return {
    sessionId: params.sessionId,
    title: `Run ${params.toolCall.title ?? about.command}?`,
    description: about.facts,
    subject: {
      type: "command",
      command: about.command,
      cwd: about.cwd,
      toolCallId: params.toolCall.toolCallId,
      ...(about.terminalId ? { terminalId: about.terminalId } : {}),
    },
    options: params.options,
  };
}

function stateUpdate(state: ForegroundState): SessionUpdate {
  if (state.state === "running") return { sessionUpdate: "state_update", state: "running" };
  if (state.state === "requires_action") return { sessionUpdate: "state_update", state: "requires_action" };
  switch (state.stopReason) {
    case "error":
      return { sessionUpdate: "state_update", state: "idle", stopReason: "error", ...(state.error ? { error: { code: -32603, message: state.error } } : {}) };
    case "end_turn":
      return { sessionUpdate: "state_update", state: "idle", stopReason: "end_turn" };
    case "cancelled":
      return { sessionUpdate: "state_update", state: "idle", stopReason: "cancelled" };
    default:
      return { sessionUpdate: "state_update", state: "idle", stopReason: null };
  }
}

/** The v1 response a session expects for the editor's v2 answer (an outcome v1 does not know counts as no choice). */
function responseV1(outcome: { outcome: string; optionId?: unknown }): v1.RequestPermissionResponse {
  return outcome.outcome === "selected" && typeof outcome.optionId === "string"
    ? { outcome: { outcome: "selected", optionId: outcome.optionId } }
    : { outcome: { outcome: "cancelled" } };
}

function requireAbsolute(cwd: string): string {
  if (!isAbsolute(cwd)) throw RequestError.invalidParams({ cwd }, "cwd must be an absolute path");
  return cwd;
}

/** The ACP v2 agent of a bridge: the bridge's sessions, encoded for v2. */
export function v2App(bridge: Bridge): AgentApp {
  const encoder = new V2Encoder(bridge.mayDecide);
  let client: AgentContext | null = null;
  const send = async (sessionId: string, update: SessionUpdate) => {
    await client?.notify("session/update", { sessionId, update });
  };
  const sessionOf = (id: string): AcpSession => bridge.session(id);
  return agent({ name: "spool" })
    .onConnect((connection) => {
      client = connection.client;
      const editor = connection.client;
      bridge.attach({
        terminalSnapshot: true,
        messageIds: true,
        update: async (sessionId, update) => {
          for (const encoded of encoder.encode(sessionId, update)) await send(sessionId, encoded);
        },
        state: (sessionId, state) => send(sessionId, stateUpdate(state)),
        requestPermission: async (params, signal, about) => {
          // The tool call shows the same facts as the request (the subject, a command, does not update it).
          const { toolCall } = params;
          for (const encoded of encoder.encode(params.sessionId, { sessionUpdate: "tool_call_update", ...toolCall })) await send(params.sessionId, encoded);
          const response = await editor.request("session/request_permission", permissionV2(params, about), {
            cancellationSignal: signal,
            stopWaitingOnCancel: true,
          });
          return responseV1(response.outcome as { outcome: string; optionId?: unknown });
        },
      });
      void connection.closed.then(() => bridge.close());
    })
    .onRequest("initialize", async ({ params }): Promise<InitializeResponse> => {
      await bridge.begin({ name: params.info.name, terminal: true, meta: params._meta });
      return {
        protocolVersion: V2_PROTOCOL_VERSION,
        info: { name: "spool", title: "Spool", version: SERVER_VERSION },
        capabilities: { session: { prompt: { embeddedContext: {} } } },
        authMethods: [],
      };
    })
    .onRequest("session/new", async ({ params }) => {
      const session = await bridge.newSession(requireAbsolute(params.cwd));
      return { sessionId: session.id, configOptions: configOptionsV2(session.configOptions()) };
    })
    .onRequest("session/resume", async ({ params }) => {
      requireAbsolute(params.cwd);
      const from = params.replayFrom;
      if (from && from.type !== "start") throw RequestError.invalidParams({ replayFrom: from }, `Spool replays from { "type": "start" } only`);
      const session = await bridge.open(params.sessionId);
      try {
        if (from) await session.replay();
        session.catchUp();
        await session.sendState();
      } catch (error) {
        throw acpError(error);
      }
      return { configOptions: configOptionsV2(session.configOptions()) };
    })
    .onRequest("session/list", ({ params }) => bridge.list(params.cwd ?? undefined, params.cursor ?? undefined))
    .onRequest("session/close", async ({ params }) => {
      await bridge.closeSession(params.sessionId);
      return {};
    })
    .onRequest("session/prompt", async ({ params }) => {
      const session = sessionOf(params.sessionId);
      const text = promptText(params.prompt as v1.ContentBlock[]);
      // Answered once the run took the prompt; how the turn ends is told by state_update.
      const loop = await new Promise<number>((resolve, reject) => {
        session.prompt(text, bridge.traceparent(params._meta), resolve).catch(reject);
      });
      const messageId = promptMessageId(loop);
      session.echo(text, messageId);
      return { messageId };
    })
    .onNotification("session/cancel", async ({ params }) => {
      await bridge.cancel(params.sessionId);
    })
    .onRequest("terminal/cancel", async ({ params }) => {
      await sessionOf(params.sessionId).cancelCommand(params.terminalId);
      return {};
    })
    .onRequest("session/set_config_option", ({ params }) => {
      const session = sessionOf(params.sessionId);
      session.setOption(params.configId, params.value);
      return { configOptions: configOptionsV2(session.configOptions()) };
    });
}
