import { isAbsolute } from "node:path";
import {
  type AgentApp,
  type AgentContext,
  agent,
  type InitializeRequest,
  type InitializeResponse,
  type ListSessionsResponse,
  PROTOCOL_VERSION,
  RequestError,
  type SessionInfo,
} from "@agentclientprotocol/sdk";
import { sayReconnects } from "../client/reconnect-log.js";
import { SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import type { Logger } from "../logger.js";
import { Traceparent } from "../protocol/common.js";
import { type Role, roleAllows } from "../protocol/roles.js";
import { runState } from "../protocol/shown-state.js";
import { SERVER_VERSION } from "../version.js";
import { promptText } from "./content.js";
import { OpenSessions } from "./open-sessions.js";
import { acpError, type ProjectLink } from "./scope.js";
import type { ServerStart } from "./server.js";
import { AcpSession, type Model } from "./session.js";
import type { Editor } from "./updates.js";

export interface BridgeOptions {
  /**
   * The server to use (started when none answers): `ready` its URL and token; `launched` settles once no process
   * started for it is still a descendant of this one (`initialize` is answered after that).
   */
  server(): ServerStart;
  /** The model alias of new sessions (`spool acp --model`, SPOOL_ACP_MODEL); default the server's first. */
  model?: string | undefined;
  log: Logger;
  /** How the editor reached Spool, in the client name the server records (default "spool acp"). */
  via?: string;
  /**
   * Whether the editor's principal may decide proposals. A viewer or an agent is shown each proposal's facts but
   * never asked, since its answer could change nothing. Unset (`spool acp`), the server says: the role its
   * credential acts with when a session's project is joined (an agent's credential from `spool acp add`: never asked).
   */
  mayDecide?: boolean;
  /** Sessions open at once on this connection (default MAX_OPEN_SESSIONS, open-sessions.ts). */
  maxSessions?: number;
}

/** Sessions in one page of `session/list` (newest first; `nextCursor` leads to the next). */
const LIST_PAGE = 100;
/** Runs `session/list` reaches per project (its newest; the most `run/list` answers), and projects it looks at. */
const LIST_RUNS_PER_PROJECT = 1000;
const LIST_PROJECTS = 1000;
/** Projects `session/list` reads at once. */
const LIST_CONCURRENCY = 4;
/** Projects one bridge joins at most (one Spool connection each). */
const MAX_PROJECTS = 32;

/** `project/alias`: a session id names its project, so it can be loaded from any directory after a restart. */
const sessionId = (project: string, run: string) => `${project}/${run}`;

function parseSessionId(id: string): { project: string; run: string } {
  const slash = id.indexOf("/");
  if (slash <= 0 || slash === id.length - 1) throw RequestError.sessionNotFound(id);
  return { project: id.slice(0, slash), run: id.slice(slash + 1) };
}

function requireAbsolute(cwd: string): string {
  if (!isAbsolute(cwd)) throw RequestError.invalidParams({ cwd }, "cwd must be an absolute path");
  return cwd;
}

/**
 * The ACP agent `spool acp` serves: sessions are Spool runs, reached through one Spool connection per
 * project (a client of the server like any other, so other clients keep working beside the editor).
 */
/** How a session's updates, questions and states reach the editor, in the ACP version it negotiated. */
export type EditorChannel = Pick<Editor, "update" | "requestPermission" | "state" | "terminalSnapshot" | "messageIds">;

export class Bridge {
  #editor: EditorChannel | null = null;
  #editorName = "editor";
  #terminal = false;
  /** The trace context the editor's `initialize` sent: the traces of a prompt without its own continue it. */
  #traceparent: string | undefined;
  readonly #links = new Map<string, Promise<ProjectLink>>();
  readonly #sessions: OpenSessions<AcpSession>;
  #server: Promise<{ url: string; token: string }> | null = null;
  /** The role the server says the credential acts with (learned when a project is joined); unknown before. */
  #role: Role | undefined;

  constructor(private readonly options: BridgeOptions) {
    this.#sessions = new OpenSessions(options.log, options.maxSessions);
  }

  app(): AgentApp {
    return agent({ name: "spool" })
      .onConnect((connection) => {
        const editor: AgentContext = connection.client;
        this.attach({
          update: (id, update) => editor.notify("session/update", { sessionId: id, update }),
          requestPermission: (params, signal) => editor.request("session/request_permission", params, { cancellationSignal: signal }),
        });
        void connection.closed.then(() => this.close());
      })
      .onRequest("initialize", async ({ params }) => this.#initialize(params))
      .onRequest("authenticate", () => ({}))
      .onRequest("session/new", async ({ params }) => {
        const session = await this.newSession(requireAbsolute(params.cwd));
        return { sessionId: session.id, configOptions: session.configOptions(), modes: session.modes() };
      })
      .onRequest("session/load", async ({ params }) => {
        requireAbsolute(params.cwd);
        const session = await this.open(params.sessionId);
        await session.replay().catch((error: unknown) => {
          throw acpError(error);
        });
        session.catchUp();
        return { configOptions: session.configOptions(), modes: session.modes() };
      })
      .onRequest("session/resume", async ({ params }) => {
        requireAbsolute(params.cwd);
        const session = await this.open(params.sessionId);
        session.catchUp();
        return { configOptions: session.configOptions(), modes: session.modes() };
      })
      .onRequest("session/list", ({ params }) => this.list(params.cwd ?? undefined, params.cursor ?? undefined))
      .onRequest("session/close", async ({ params }) => {
        await this.closeSession(params.sessionId);
        return {};
      })
      .onRequest("session/prompt", async ({ params }) => {
        const session = this.session(params.sessionId);
        return { stopReason: await session.prompt(promptText(params.prompt), this.traceparent(params._meta)) };
      })
      .onNotification("session/cancel", async ({ params }) => {
        await this.cancel(params.sessionId);
      })
      .onRequest("session/set_config_option", ({ params }) => {
        const session = this.session(params.sessionId);
        session.setOption(params.configId, params.value);
        return { configOptions: session.configOptions() };
      })
      .onRequest("session/set_mode", ({ params }) => {
        this.session(params.sessionId).setOption("mode", params.modeId);
        return {};
      });
  }

  async close(): Promise<void> {
    await this.#sessions.closeAll();
    for (const link of this.#links.values()) {
      const resolved = await link.catch(() => null);
      resolved?.client.close();
    }
    this.#links.clear();
  }

  /** The editor's channel, once it connected: every session of this bridge speaks to it. */
  attach(channel: EditorChannel): void {
    this.#editor = channel;
  }

  /**
   * `initialize`, whatever the version: who the editor is, whether it shows terminals, its trace context. Connects to
   * (or starts) the server while the editor gets ready; a failure is reported at the first session. Resolves once
   * the launcher of a server started here has exited: an editor that looks at its agent's descendants once
   * initialized (acpx 0.19, to end them all when it exits) never sees the server among them.
   */
  async begin(editor: { name: string; terminal: boolean; meta: { [key: string]: unknown } | null | undefined }): Promise<void> {
    this.#editorName = editor.name || "editor";
    this.#terminal = editor.terminal;
    this.#traceparent = traceparentOf(editor.meta);
    if (!this.#server) {
      const start = this.options.server();
      this.#server = start.ready;
      this.#server.catch(() => undefined);
      await start.launched;
    }
  }

  /** Whether the editor's principal may decide proposals (and so stop commands). */
  get mayDecide(): boolean {
    return this.options.mayDecide ?? (this.#role === undefined || roleAllows(this.#role, "person"));
  }

  /** The trace context a request's traces continue: its own (`_meta.traceparent`), else the one `initialize` sent. */
  traceparent(meta: { [key: string]: unknown } | null | undefined): string | undefined {
    return traceparentOf(meta) ?? this.#traceparent;
  }

  async #initialize(params: InitializeRequest): Promise<InitializeResponse> {
    await this.begin({ name: params.clientInfo?.name ?? "", terminal: params.clientCapabilities?._meta?.terminal_output === true, meta: params._meta });
    return {
      protocolVersion: Math.min(params.protocolVersion, PROTOCOL_VERSION),
      agentCapabilities: {
        loadSession: true,
        promptCapabilities: { embeddedContext: true },
        sessionCapabilities: { list: {}, resume: {}, close: {} },
      },
      agentInfo: { name: "spool", title: "Spool", version: SERVER_VERSION },
      authMethods: [],
    };
  }

  get #editorPort(): Editor {
    const editor = this.#editor;
    if (!editor) throw new RequestError(-32603, "no editor connection");
    return { ...editor, name: this.#editorName, terminal: this.#terminal, mayDecide: this.mayDecide };
  }

  #connect(): Promise<{ url: string; token: string; door?: string | undefined }> {
    this.#server ??= this.options.server().ready;
    return this.#server.catch((error: unknown) => {
      this.#server = null;
      throw new RequestError(-32603, error instanceof Error ? error.message : String(error));
    });
  }

  #clientInfo() {
    return { name: `${this.#editorName} (${this.options.via ?? "spool acp"})`, version: SERVER_VERSION };
  }

  /** Which project a directory or a name is, without creating it unless `create`; null when it does not exist. */
  async #findProject(want: { root: string } | { name: string }, create: boolean): Promise<{ name: string; root: string } | null> {
    const { url, token, door } = await this.#connect();
    const probe = await SpoolClient.connect(url, { token, door });
    try {
      const reply = await probe.initialize("name" in want ? want.name : undefined, {
        ...("root" in want ? { root: want.root } : {}),
        create,
        client: this.#clientInfo(),
      });
      if (reply.principal) this.#role = reply.principal.role;
      return reply.project;
    } catch (error) {
      if (!create && error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND") return null;
      throw acpError(error);
    } finally {
      probe.close();
    }
  }

  /** The bridge's connection to a project: opened once, reconnecting by itself (its watches resume). */
  #link(project: { name: string; root: string }): Promise<ProjectLink> {
    let link = this.#links.get(project.name);
    if (!link) {
      if (this.#links.size >= MAX_PROJECTS) throw new RequestError(-32603, `spool acp joins at most ${MAX_PROJECTS} projects at once`);
      link = this.#connect().then(async ({ url, token, door }) => {
        const client = await SpoolClient.open(url, { token, door, reconnect: { project: project.name, client: this.#clientInfo() } });
        // On stderr (the editor's log of the agent): why the project's connection does not come back.
        sayReconnects(client, `spool acp: project ${JSON.stringify(project.name)}`, this.options.log);
        const waiting = new Set<(back: boolean) => void>();
        client.onReconnect(() => {
          for (const wake of waiting) wake(true);
          waiting.clear();
          for (const session of this.#sessions.values()) if (session.link.client === client) session.resync();
        });
        const reconnected = (timeoutMs: number) =>
          client.closed
            ? new Promise<boolean>((resolve) => {
                const wake = (back: boolean) => {
                  clearTimeout(timer);
                  waiting.delete(wake);
                  resolve(back);
                };
                const timer = setTimeout(() => wake(false), timeoutMs);
                waiting.add(wake);
              })
            : Promise.resolve(true);
        return { client, name: project.name, root: project.root, reconnected };
      });
      this.#links.set(project.name, link);
      link.catch(() => this.#links.delete(project.name));
    }
    return link;
  }

  async #models(link: ProjectLink): Promise<Model[]> {
    return (await link.client.call("model/list", {})).models;
  }

  /** `session/new`: a new run in the project rooted at `cwd` (created when there is none, refused outside the credential's scope). */
  async newSession(cwd: string): Promise<AcpSession> {
    const giveBack = await this.#sessions.reserve();
    try {
      return await this.#newSession(cwd);
    } finally {
      giveBack();
    }
  }

  async #newSession(cwd: string): Promise<AcpSession> {
    const project = (await this.#findProject({ root: cwd }, true))!;
    const link = await this.#link(project);
    const models = await this.#models(link).catch((error: unknown) => {
      throw acpError(error);
    });
    const model = this.options.model ?? models[0]?.alias;
    if (!model) throw new RequestError(-32603, "The Spool server has no model configured: set SPOOL_MODEL_<ALIAS>=openai/<model> where it runs");
    if (!models.some((m) => m.alias === model)) {
      throw new RequestError(
        -32603,
        `Model "${model}" is not configured on the Spool server; ${models.length ? `configured: ${models.map((m) => m.alias).join(", ")}` : "it has none"} — define one where it runs and restart it (SPOOL_MODEL_${model.toUpperCase().replace(/[^A-Z0-9]/g, "_")}=openai/<model>), or try spool serve --demo-model`,
      );
    }
    let created: { run: { alias: string; mode: "ask" | "act" } } | undefined;
    for (let attempt = 0; !created; attempt++) {
      try {
        created = await link.client.call("run/create", { model, mode: "act" });
      } catch (error) {
        // Two runs created at the same moment were given the same alias: ask again.
        if (!(attempt < 3 && error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) throw acpError(error);
      }
    }
    return this.#register(link, created.run.alias, models, { mode: created.run.mode, model });
  }

  /** A session by id for load and resume: the run must exist in the project the id names. */
  async open(id: string): Promise<AcpSession> {
    if (this.#sessions.has(id)) return this.session(id);
    const { project: name, run } = parseSessionId(id);
    const giveBack = await this.#sessions.reserve();
    try {
      return await this.#open(id, name, run);
    } finally {
      giveBack();
    }
  }

  async #open(id: string, name: string, run: string): Promise<AcpSession> {
    const project = await this.#findProject({ name }, false);
    if (!project) throw RequestError.sessionNotFound(id);
    const link = await this.#link(project);
    let found: { run: { alias: string; model: string | null; mode: "ask" | "act" } };
    try {
      found = await link.client.call("run/get", { run });
    } catch (error) {
      if (error instanceof SpoolRpcError && (error.errorCode === "NOT_FOUND" || error.errorCode === "INVALID_PARAMS")) throw RequestError.sessionNotFound(id);
      throw acpError(error);
    }
    const models = await this.#models(link).catch(() => []);
    return this.#register(link, found.run.alias, models, { mode: found.run.mode, model: found.run.model });
  }

  #register(link: ProjectLink, run: string, models: Model[], init: { mode: "ask" | "act"; model: string | null }): AcpSession {
    const id = sessionId(link.name, run);
    const session = new AcpSession(id, link, run, this.#editorPort, models, init, this.options.log);
    this.#sessions.add(session);
    return session;
  }

  /** An open session of this connection (now its most recently used). */
  session(id: string): AcpSession {
    const session = this.#sessions.use(id);
    if (!session) throw RequestError.sessionNotFound(id);
    return session;
  }

  /** `session/cancel` (a notification: a session that is not open is no error). */
  async cancel(id: string): Promise<void> {
    await this.#sessions.peek(id)?.cancel();
  }

  /** `session/close`: its work is cancelled and it stops showing the run. */
  async closeSession(id: string): Promise<void> {
    const session = this.session(id);
    this.#sessions.delete(id);
    await session.end();
  }

  /**
   * Every run the token can see as a session (the token grants every project of the server), newest first
   * by creation, a page at a time; `cwd` keeps the project rooted there. The cursor is the last session
   * listed, so a page never repeats or skips a session because runs were created meanwhile.
   */
  async list(cwd: string | undefined, cursor: string | undefined): Promise<ListSessionsResponse> {
    const after = cursor === undefined ? null : parseCursor(cursor);
    const projects: { name: string; root: string; runs: number | null }[] = [];
    if (cwd !== undefined) {
      const project = await this.#findProject({ root: requireAbsolute(cwd) }, false);
      if (project) projects.push({ ...project, runs: null });
    } else {
      const { url, token, door } = await this.#connect();
      const probe = await SpoolClient.connect(url, { token, door });
      try {
        const { projects: all } = await probe.call("project/list", { limit: LIST_PROJECTS });
        for (const p of all) if (p.runs > 0) projects.push({ name: p.name, root: p.root, runs: p.runs });
      } catch (error) {
        throw acpError(error);
      } finally {
        probe.close();
      }
    }
    const found: (SessionInfo & { createdAt: number })[] = [];
    // A few projects at a time: one connection each for the projects this bridge has not joined.
    const queue = [...projects];
    const worker = async () => {
      for (let project = queue.shift(); project; project = queue.shift()) {
        const runs = await this.#runsOf(project, Math.min(LIST_RUNS_PER_PROJECT, project.runs ?? LIST_RUNS_PER_PROJECT));
        for (const run of runs) {
          const session = { sessionId: sessionId(project.name, run.alias), createdAt: run.createdAt };
          if (after && !isOlder(session, after)) continue;
          // The run's state in the words every client shows (runState), for editors that show more than the title.
          const _meta = { spool: { state: runState(run), pending: run.pending } };
          found.push({ ...session, cwd: project.root, title: run.title ?? run.alias, updatedAt: new Date(run.updatedAt).toISOString(), _meta });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, projects.length) }, worker));
    found.sort((a, b) => (isOlder(a, b) ? 1 : isOlder(b, a) ? -1 : 0));
    const page = found.slice(0, LIST_PAGE);
    const last = page.at(-1);
    return {
      sessions: page.map(({ createdAt: _, ...session }) => session),
      ...(found.length > LIST_PAGE && last ? { nextCursor: makeCursor(last) } : {}),
    };
  }

  /** A project's newest runs: through the bridge's connection to it when there is one, else a connection of its own. */
  async #runsOf(project: { name: string; root: string }, limit: number) {
    const open = this.#links.get(project.name);
    try {
      if (open) return (await (await open).client.call("run/list", { limit })).runs;
      const { url, token } = await this.#connect();
      const probe = await SpoolClient.connect(url, { token });
      try {
        await probe.initialize(project.name, { create: false, client: this.#clientInfo() });
        return (await probe.call("run/list", { limit })).runs;
      } finally {
        probe.close();
      }
    } catch (error) {
      // Removed since it was listed: it has no sessions any more.
      if (error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND") return [];
      throw acpError(error);
    }
  }
}

/**
 * The W3C trace context an editor sent with a request (`_meta.traceparent`, a root key of `_meta` as ACP's
 * meta-propagation RFD names it, the same as MCP's), when it is one:
 * the traces of the proposals the request leads to continue the editor's span. Anything else is left out.
 */
function traceparentOf(meta: { [key: string]: unknown } | null | undefined): string | undefined {
  const value = meta?.traceparent;
  return typeof value === "string" && Traceparent.safeParse(value).success ? value : undefined;
}

/** Sessions are ordered newest first by creation, then by id: whether `a` comes after `b`. */
function isOlder(a: { createdAt: number; sessionId: string }, b: { createdAt: number; sessionId: string }): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.sessionId < b.sessionId);
}

function makeCursor(last: { createdAt: number; sessionId: string }): string {
  return Buffer.from(JSON.stringify({ createdAt: last.createdAt, sessionId: last.sessionId })).toString("base64url");
}

function parseCursor(cursor: string): { createdAt: number; sessionId: string } {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (value && typeof value === "object") {
      const { createdAt, sessionId } = value as Record<string, unknown>;
      if (typeof createdAt === "number" && typeof sessionId === "string" && Object.keys(value).length === 2) return { createdAt, sessionId };
    }
  } catch {
    // not JSON: refused below
  }
  throw RequestError.invalidParams({ cursor }, "cursor is not one this agent gave: pass a session/list response's nextCursor as it is");
}
