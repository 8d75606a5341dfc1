import { lstatSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { z } from "zod";
import type { Bus } from "../cluster/bus.js";
import type { SpoolConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { FilterName, FilterValues, HookName, HookPayloads } from "../plugins/hooks.js";
import { loaderVariables, loaderVariablesMessage, type SandboxModeName } from "../protocol/sandbox.js";
import type { ConnectionHandle, ProjectRef } from "../rpc/connection-context.js";
import { conflict, notFound, SpoolError } from "../rpc/errors.js";
import { type RunnerAttachParams, type RunnerAttachResult, type RunnerExecParams, RunnerExecResult } from "../runners/protocol.js";
import { sandboxModes } from "../runners/sandbox.js";
import { type Attributes, lineCount, parseAttributes, type Repositories, UniqueViolation } from "../store/repositories.js";
import type { AllowRuleRow, EntryRow, RunRow } from "../store/schema.js";
import type { ClusterLink } from "./cluster.js";
import type { Owners } from "./owners.js";
import type { ProducerRegistry } from "./producer-registry.js";
import type { AttachedRunner, RunnerRegistry } from "./runner-registry.js";
import type { FinishedNotice, ProposalNotice, ResolvedChannel, ResolvedNotice, Resolver } from "./schemas.js";
import { channelPath, logPath, slugFromCommand } from "./slug.js";
import { ENTRY } from "./status.js";
import { type Outcome, outcomeAttributes, outcomeStatus, summaryLine } from "./summary.js";
import { newResumeToken, tokenKey, tokenMatches } from "./tokens.js";
import type { WatcherHub } from "./watchers.js";

/** What the core needs from the server around it (wired once at start-up). */
export interface CoreDeps {
  repos: Repositories;
  config: SpoolConfig;
  log: Logger;
  /** Tells every connection of the project, on this server and the others sharing its database. */
  notifyProject(projectId: number, method: string, params: unknown): void;
  /** Tells the project's connections on this server only (what another server announced). */
  notifyLocal(projectId: number, method: string, params: unknown): void;
  /** How this server talks to the others sharing its database. */
  bus: Bus;
  emit<H extends HookName>(hook: H, payload: HookPayloads[H]): Promise<void>;
  applyFilter<F extends FilterName>(name: F, value: FilterValues[F]): Promise<FilterValues[F]>;
}

export interface ProposalInput {
  tool: string;
  command: string;
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  timeout_ms?: number | undefined;
  /** Run it under a pseudo-terminal of this size. */
  tty?: { cols: number; rows: number } | undefined;
  /** Long-running work started in the background: its time limit is `backgroundTimeoutMs`, not `commandTimeoutMs`. */
  background?: boolean | undefined;
  /** The sandbox mode asked for (proposal/create's `sandbox`); default: the configured one. The model's tools never set it. */
  sandbox?: SandboxModeName | undefined;
  proposedBy: string;
  /** More attributes for the log entry (the agent loop records its tool call here). */
  extra?: Record<string, unknown>;
}

export interface ProducerTarget {
  run: string;
  path: string;
}

export interface FinishResult {
  path: string;
  status: number;
  changed: boolean;
  channels: { channel: number; path: string; status: number; bytes: number; lines: number }[];
}

export interface AcceptResult {
  path: string;
  status: number;
  runner: string;
  channels: z.output<typeof ResolvedChannel>[];
  /** For runner "self": the token that lets a later connection of the accepting client take the producer back. */
  resumeToken?: string;
  /** The "always allow" rule stored with this accept (`always`). */
  rule?: number;
}

type ResolverOut = z.output<typeof Resolver>;

/** An accept another server passes on to the one its runner is attached to. */
export interface ForwardedAccept {
  runner?: string | undefined;
  reason?: string | undefined;
  always?: string | undefined;
  resolver: ResolverOut;
  resolvedBy: string;
}

export interface ClaimResult {
  path: string;
  status: number;
  channels: { channel: number; path: string; status: number; lastSeq: number }[];
}

export const describeCaller = (connection: ConnectionHandle) => connection.clientInfo?.name ?? `connection ${connection.id}`;

/** A client's connection as the resolver of a proposal. */
export const connectionResolver = (connection: ConnectionHandle): ResolverOut => ({
  kind: "connection",
  connectionId: connection.id,
  client: connection.clientInfo?.name ?? null,
  rule: null,
});

/** run/abort as the resolver of the proposals it rejects. */
export const ABORT_RESOLVER: ResolverOut = { kind: "abort", connectionId: null, client: null, rule: null };

/** The environment as rules compare it: JSON with sorted keys. */
export function canonicalEnv(env: Record<string, string> | undefined): string {
  return JSON.stringify(Object.fromEntries(Object.entries(env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

const ruleResolver = (rule: AllowRuleRow): ResolverOut => ({ kind: "rule", connectionId: null, client: rule.created_by, rule: rule.id });
const describeRule = (rule: AllowRuleRow) => `rule #${rule.id} (always allow, set by ${rule.created_by})`;

/** The channel that holds what clients sent to a producer's stdin. */
export const INPUT_CHANNEL = 0;

const invalid = (path: string, message: string) => new SpoolError("INVALID_PARAMS", `Invalid params: ${message}`, { issues: [{ path, message }] });

/**
 * The one owner of the producer lifecycle. Every status change of a proposal
 * or a data channel happens here, each stored, announced and hooked exactly
 * once:
 *
 *   propose → 202 · accept → log 200, channels 102 · reject → 403
 *   start (the owner runs it) · append (owner only)
 *   complete → 200/500 · abort → 499 (owner only) · cancel → 499 (anyone)
 *   lose → 499 (the owner never came back, or the server restarted)
 *
 * A producer has exactly one owner: the runner it was dispatched to, or the
 * connection that accepted it with runner "self". Ownership is durable as the
 * owner's name and resume-token key in the log entry, and live as one
 * connection in `Owners`.
 */
export class Lifecycle {
  /** Channel lookups for appends, per (project, run, path, channel); dropped when the producer finishes. */
  readonly #targets = new Map<string, { entryId: number; producerId: number }>();
  readonly #targetKeys = new Map<number, string[]>();
  /** The other servers sharing the database (set once the cluster link exists). */
  #cluster: ClusterLink | null = null;

  constructor(
    private readonly deps: CoreDeps,
    readonly producers: ProducerRegistry,
    private readonly owners: Owners,
    readonly runners: RunnerRegistry,
    readonly watchers: WatcherHub,
  ) {}

  get #repos() {
    return this.deps.repos;
  }

  useCluster(link: ClusterLink): void {
    this.#cluster = link;
  }

  /** accept, passed on by another server because the runner it names (or the project's default) is attached here. */
  acceptForwarded(project: ProjectRef, target: ProducerTarget, options: ForwardedAccept): Promise<AcceptResult> {
    return this.#accept(project, target, { ...options, self: null, forwarded: true });
  }

  /** The run of the caller's project with this alias; another project's run is simply not found. */
  async requireRun(project: ProjectRef, alias: string): Promise<RunRow> {
    const run = await this.#repos.runs.findRun(project.id, alias);
    if (!run) throw notFound(`Run "${alias}"`, { run: alias });
    return run;
  }

  /** The run and a producer's log entry named by `{run, path}` in the caller's project. */
  async requireLog(project: ProjectRef, alias: string, path: string): Promise<{ run: RunRow; log: EntryRow }> {
    const run = await this.requireRun(project, alias);
    const log = await this.#repos.entries.findEntry(run.id, path);
    if (log?.scheme !== "log") throw notFound(`Producer "${path}"`, { run: alias, path });
    return { run, log };
  }

  // ---- propose · accept · reject · start ------------------------------------------------------

  /** propose: the log entry at 202, `run/proposal` to every connection of the project. */
  async propose(project: ProjectRef, run: RunRow, input: ProposalInput): Promise<EntryRow> {
    const producer = this.producers.get(input.tool);
    if (!producer)
      throw invalid(
        "tool",
        `unknown tool "${input.tool}"; registered: ${this.producers
          .list()
          .map((p) => p.tool)
          .join(", ")}`,
      );
    const allowOutside = this.deps.config.limits.allowCwdOutsideRoot;
    const filtered = await this.deps.applyFilter("proposal:create", {
      tool: input.tool,
      command: input.command,
      cwd: confineCwd(project, input.cwd, allowOutside),
      env: input.env ?? {},
    });
    const cwd = confineCwd(project, filtered.cwd ?? undefined, allowOutside);
    // Nothing that makes the loader run code of the proposal's choosing, before any sandbox exists (or in none).
    const loader = loaderVariables(filtered.env);
    if (loader.length > 0)
      throw new SpoolError("INVALID_PARAMS", `Invalid params: ${loaderVariablesMessage(loader)}`, {
        issues: [{ path: "env", message: loaderVariablesMessage(loader) }],
        names: loader,
      });
    const sandbox = await this.#sandboxFor(project, producer, input.sandbox);
    // A rule stored for commands in the configured mode does not let one that asks to leave the sandbox through unseen.
    const ruleApplies = !(input.sandbox === "full" && this.deps.config.sandbox !== "full");
    const rule = !ruleApplies
      ? undefined
      : await this.#repos.allowRules.findRule({
          run_id: run.id,
          tool: producer.tool,
          command: filtered.command,
          cwd,
          env: canonicalEnv(filtered.env),
        });
    const base = slugFromCommand(filtered.command);
    const prefix = logPath(run.turn, producer.tool, base);
    // Start after the suffixes this turn already uses (one query, not one failed insert per taken slug).
    let start = 1;
    for (const path of await this.#repos.entries.pathsWithPrefix(run.id, prefix)) {
      const suffix = path === prefix ? 1 : Number(path.slice(prefix.length + 1));
      if (Number.isInteger(suffix)) start = Math.max(start, suffix + 1);
    }
    const now = Date.now();
    for (let n = start; ; n++) {
      const slug = n === 1 ? base : `${base}-${n}`;
      let row: EntryRow;
      try {
        row = await this.#repos.entries.insertEntry({
          run_id: run.id,
          path: logPath(run.turn, producer.tool, slug),
          scheme: "log",
          turn: run.turn,
          status: ENTRY.proposed,
          attributes: JSON.stringify({
            tool: producer.tool,
            command: filtered.command,
            cwd,
            env: filtered.env,
            ...(input.timeout_ms ? { timeoutMs: input.timeout_ms } : {}),
            ...(input.tty ? { tty: { cols: input.tty.cols, rows: input.tty.rows } } : {}),
            ...(input.background ? { background: true } : {}),
            slug,
            readOnly: sandbox.mode === "read-only",
            sandbox: sandbox.mode,
            ...(sandbox.mode === "workspace-write" ? { sandboxNetwork: this.deps.config.sandboxNetwork } : {}),
            ...(sandbox.reason ? { sandboxReason: sandbox.reason } : {}),
            proposedBy: input.proposedBy,
            ...input.extra,
          }),
          created_at: now,
          updated_at: now,
        });
      } catch (error) {
        // Another proposal took this slug in the same turn a moment ago: try the next suffix.
        if (error instanceof UniqueViolation) continue;
        throw error;
      }
      if (rule) {
        // An "always allow" rule of the run matches: the server accepts it itself, and nobody is asked.
        await this.deps.emit("entry:status", { projectId: project.id, run, entry: row, previous: null });
        try {
          await this.#accept(project, { run: run.alias, path: row.path }, { resolver: ruleResolver(rule), resolvedBy: describeRule(rule), self: null });
          return (await this.#repos.entries.findEntryById(row.id)) ?? row;
        } catch (error) {
          // No runner can take it now (or it was decided meanwhile): it waits for a person like any other proposal.
          this.deps.log.warn(`rule #${rule.id} matched ${row.path} but could not accept it: ${error instanceof Error ? error.message : String(error)}`);
          const current = await this.#repos.entries.findEntryById(row.id);
          if (current?.status !== ENTRY.proposed) return current ?? row;
          this.deps.notifyProject(project.id, "run/proposal", proposalNotice(run.alias, current));
          return current;
        }
      }
      this.deps.notifyProject(project.id, "run/proposal", proposalNotice(run.alias, row));
      await this.deps.emit("entry:status", { projectId: project.id, run, entry: row, previous: null });
      return row;
    }
  }

  /**
   * The sandbox mode a proposal runs in, decided at proposal time so that every client shows it before the
   * decision: read-only for read-only producers; else the mode asked for, or the configured one. With
   * "auto", workspace-write, unless the runner a plain accept would pick here cannot give it: then full,
   * with the reason recorded. An accept on a runner that cannot give the recorded mode is refused.
   */
  async #sandboxFor(
    project: ProjectRef,
    producer: { tool: string; readOnly?: boolean | undefined },
    requested: SandboxModeName | undefined,
  ): Promise<{ mode: SandboxModeName; reason?: string }> {
    if (producer.readOnly) {
      if (requested && requested !== "read-only") throw invalid("sandbox", `the ${producer.tool} tool runs read-only; it cannot run in ${requested}`);
      return { mode: "read-only" };
    }
    const configured = this.deps.config.sandbox;
    if (requested) return { mode: requested };
    if (configured !== "auto") return { mode: configured };
    const fallback = await this.runners.defaultSandbox(project.id);
    if (fallback && !sandboxModes(fallback.sandbox).includes("workspace-write")) {
      return {
        mode: "full",
        reason: `runner "${fallback.name}" has no workspace-write sandbox (${fallback.sandbox.detail}); set "sandbox": "workspace-write" in config.json to refuse such runners instead`,
      };
    }
    return { mode: "workspace-write" };
  }

  /** Whether the runner named (undefined: the project's default) is attached to this server, or is its embedded one. */
  #runnerHere(project: ProjectRef, name: string | undefined): boolean {
    if (name === undefined) return this.runners.list(project.id).some((r) => r.default);
    return this.runners.get(project.id, name) !== undefined || name === this.runners.embeddedName;
  }

  async #requirePending(project: ProjectRef, alias: string, path: string): Promise<{ run: RunRow; log: EntryRow }> {
    const { run, log } = await this.requireLog(project, alias, path).catch((error: unknown) => {
      if (error instanceof SpoolError && error.errorName === "NOT_FOUND" && error.details.path) throw notFound(`Proposal "${path}"`, { run: alias, path });
      throw error;
    });
    if (log.status !== ENTRY.proposed) throw conflict(`"${path}" is not a pending proposal (status ${log.status})`, { status: log.status });
    return { run, log };
  }

  /**
   * accept: the log entry 202 → 200 and its data channels at 102, owned by
   * the chosen runner (which gets `runner/exec`) or, for "self", by `caller`.
   */
  async accept(
    caller: ConnectionHandle,
    project: ProjectRef,
    target: ProducerTarget,
    options: { runner?: string | undefined; reason?: string | undefined; always?: boolean | undefined },
  ): Promise<AcceptResult> {
    return this.#accept(project, target, {
      runner: options.runner,
      reason: options.reason,
      resolver: connectionResolver(caller),
      resolvedBy: describeCaller(caller),
      self: caller,
      ...(options.always ? { always: describeCaller(caller) } : {}),
    });
  }

  /**
   * accept, for a client (`self` is its connection, the owner when the runner is "self") or for a rule
   * (`self` null). `always` names who asked to store an "always allow" rule for the proposal's tool,
   * command, cwd and env.
   */
  async #accept(
    project: ProjectRef,
    target: ProducerTarget,
    options: {
      runner?: string | undefined;
      reason?: string | undefined;
      always?: string;
      resolver: ResolverOut;
      resolvedBy: string;
      self: ConnectionHandle | null;
      /** Passed on by another server: taken here, never passed on again. */
      forwarded?: boolean;
    },
  ): Promise<AcceptResult> {
    // A runner attached to another server sharing the database: that server accepts it and dispatches it.
    if (this.#cluster?.shared && !options.forwarded && options.runner !== "self" && !this.#runnerHere(project, options.runner)) {
      const server = await this.#cluster.runnerServer(project.id, options.runner ?? null);
      if (server !== null) {
        const { runner, reason, always, resolver, resolvedBy } = options;
        return this.#cluster.acceptElsewhere(server, project, target, { runner, reason, always, resolver, resolvedBy });
      }
    }
    const { run, log } = await this.#requirePending(project, target.run, target.path);
    const attributes = parseAttributes(log);
    const tool = String(attributes.tool);
    const producer = this.producers.get(tool);
    if (!producer) throw new SpoolError("UNSUPPORTED", `The "${tool}" producer is no longer loaded`);
    // Read-only work (the env producer, and so every command of an ask run) only goes to a runner with a read-only sandbox.
    const readOnly = producer.readOnly === true || attributes.readOnly === true;
    // The mode recorded at proposal time (none recorded: a proposal from before sandbox modes, which ran without one).
    const mode = readOnly ? "read-only" : attributes.sandbox === "workspace-write" ? "workspace-write" : "full";
    if (options.runner === "self" && !options.self) throw conflict('a rule cannot accept with runner "self"');
    const owner = await this.runners.select(project, options.runner, { readOnly, mode });
    const selfToken = owner === "self" ? newResumeToken() : undefined;
    const runnerName = owner === "self" ? "self" : owner.name;
    const { resolvedBy, resolver } = options;
    const slug = String(attributes.slug);
    const plan = Object.entries(producer.channels).map(([n, name]) => ({
      channel: Number(n),
      path: channelPath(tool, log.turn, slug, Number(n)),
      attributes: { command: attributes.command, channel: Number(n), name, log: log.path },
    }));
    const next = {
      ...attributes,
      decision: "accept",
      runner: runnerName,
      ownerKey: owner === "self" ? tokenKey(selfToken!) : owner.tokenKey,
      resolvedBy,
      ...(options.reason ? { reason: options.reason } : {}),
    };
    const rows = await this.#repos.producers.openChannels(log, { from: ENTRY.proposed, to: ENTRY.done, attributes: next }, plan, ENTRY.streaming);
    if (!rows) throw conflict(`"${target.path}" was resolved by someone else`);
    const accepted: EntryRow = { ...log, status: ENTRY.done, attributes: JSON.stringify(next) };
    await this.#own(log.id, owner === "self" ? options.self! : owner.connection, owner === "self" ? "self" : "runner");
    const rule =
      options.always === undefined
        ? undefined
        : await this.#repos.allowRules.insertRule({
            run_id: run.id,
            tool,
            command: String(attributes.command),
            cwd: String(attributes.cwd ?? ""),
            env: canonicalEnv(attributes.env as Record<string, string> | undefined),
            created_by: options.always,
          });
    const channels = rows.map((r) => ({ channel: r.channel!, name: producer.channels[r.channel!]!, path: r.path, status: r.status }));
    this.#announceResolved(project, run, accepted, { decision: "accept", runner: runnerName, resolvedBy, resolver, reason: options.reason ?? null, channels });
    await this.deps.emit("entry:status", { projectId: project.id, run, entry: accepted, previous: ENTRY.proposed });
    if (owner !== "self") void this.#dispatch(project, run, accepted, owner, channels);
    return {
      path: log.path,
      status: ENTRY.done,
      runner: runnerName,
      channels,
      ...(selfToken ? { resumeToken: selfToken } : {}),
      ...(rule ? { rule: rule.id } : {}),
    };
  }

  /** reject: the log entry 202 → 403. `by` names who decided (a client, or run/abort); `resolver` says which (default: a client named `by`). */
  async reject(project: ProjectRef, target: ProducerTarget, options: { by: string; resolver?: ResolverOut; reason?: string | undefined }): Promise<EntryRow> {
    const { run, log } = await this.#requirePending(project, target.run, target.path);
    const reason = options.reason ?? "rejected";
    const next = { ...parseAttributes(log), decision: "reject", reason, resolvedBy: options.by };
    if (!(await this.#repos.producers.moveStatus(log.id, ENTRY.proposed, ENTRY.rejected, next)))
      throw conflict(`"${target.path}" was resolved by someone else`);
    const rejected: EntryRow = { ...log, status: ENTRY.rejected, attributes: JSON.stringify(next) };
    this.#announceResolved(project, run, rejected, {
      decision: "reject",
      runner: null,
      resolvedBy: options.by,
      resolver: options.resolver ?? { kind: "connection", connectionId: null, client: options.by, rule: null },
      reason,
      channels: [],
    });
    await this.deps.emit("entry:status", { projectId: project.id, run, entry: rejected, previous: ENTRY.proposed });
    return rejected;
  }

  #announceResolved(
    project: ProjectRef,
    run: RunRow,
    log: EntryRow,
    rest: Omit<z.input<typeof ResolvedNotice>, "run" | "path" | "status" | "loop" | "toolCallId">,
  ): void {
    const notice: z.input<typeof ResolvedNotice> = { run: run.alias, path: log.path, status: log.status, ...rest, ...modelCall(parseAttributes(log)) };
    this.deps.notifyProject(project.id, "run/resolved", notice);
  }

  /** Sends `runner/exec` to the runner; one that cannot take it loses the producer at once. */
  async #dispatch(
    project: ProjectRef,
    run: RunRow,
    log: EntryRow,
    runner: AttachedRunner,
    channels: { channel: number; name: string; path: string }[],
  ): Promise<void> {
    const attributes = parseAttributes(log);
    const tty = attributes.tty as { cols: number; rows: number } | undefined;
    const defaultTimeout = attributes.background === true ? this.deps.config.backgroundTimeoutMs : this.deps.config.commandTimeoutMs;
    const readOnly = attributes.readOnly === true || this.producers.get(String(attributes.tool))?.readOnly === true;
    const workspaceWrite = !readOnly && attributes.sandbox === "workspace-write";
    const params: RunnerExecParams = {
      run: run.alias,
      path: log.path,
      command: String(attributes.command),
      cwd: resolve(project.root, String(attributes.cwd ?? "")),
      cwdRelative: String(attributes.cwd ?? ""),
      env: (attributes.env as Record<string, string> | undefined) ?? {},
      channels: channels.map(({ channel, name, path }) => ({ channel, name, path })),
      timeoutMs: typeof attributes.timeoutMs === "number" ? attributes.timeoutMs : defaultTimeout,
      readOnly,
      // Runners from before sandbox modes refuse fields they do not know; they are never given workspace-write work.
      ...(workspaceWrite ? { sandbox: "workspace-write" as const, network: attributes.sandboxNetwork !== false } : {}),
      ...((readOnly || workspaceWrite) && runner.sandbox.modes ? { hide: this.#serverState() } : {}),
      passEnv: this.deps.config.commandEnv,
      ...(tty ? { tty } : {}),
    };
    try {
      const reply = RunnerExecResult.parse(await runner.connection.request("runner/exec", params, 30_000));
      // A runner that could not start the command has already sent stream/aborted; this covers one that did not.
      if (!reply.started) return void (await this.lose(log.id, `failed to start: ${reply.error ?? "unknown error"}`));
      await this.start(project, run, log, runner.name, reply.target ?? { backend: runner.backend });
    } catch (error) {
      await this.lose(log.id, `runner "${runner.name}" did not take the command: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** The server's own state, which no sandboxed command may see: its home (token, database, config) and its token file and database wherever they are. */
  #serverState(): string[] {
    const { home, tokenFile, dbFile, databaseUrl } = this.deps.config;
    const database = databaseUrl ? [] : [dbFile, `${dbFile}-wal`, `${dbFile}-shm`];
    return [...new Set([home, tokenFile, join(home, "config.json"), join(home, "processes"), ...database])];
  }

  /** start: the owner runs the producer; where (pid, container, host) is recorded on the log entry. */
  async start(project: ProjectRef, run: RunRow, log: EntryRow, runner: string, process: Record<string, unknown>): Promise<boolean> {
    // Cancelled (or lost) before the runner's reply came back: nothing is running to record.
    const channels = await this.#repos.entries.listChannels(log.id);
    if (!channels.some((c) => c.status === ENTRY.streaming)) return false;
    await this.#repos.entries.setAttribute(log.id, "process", process);
    this.deps.notifyProject(project.id, "stream/started", { run: run.alias, path: log.path, runner, process });
    await this.deps.emit("producer:started", { projectId: project.id, run, log, runner, process });
    return true;
  }

  // ---- append ----------------------------------------------------------------------------------

  /** append: one chunk to one channel, by the producer's owner only. Costs the same whatever the channel holds. */
  async append(
    caller: ConnectionHandle,
    project: ProjectRef,
    params: { run: string; path: string; channel: number; data: Buffer; seq?: number | undefined },
    /** Called once the chunk is queued for its commit, behind the chunks queued before it. */
    queued?: () => void,
  ): Promise<{ channel: number; seq: number; bytes: number; duplicate: boolean }> {
    const key = `${project.id}\u0000${params.run}\u0000${params.path}\u0000${params.channel}`;
    let target = this.#targets.get(key);
    if (!target) {
      const { log } = await this.requireLog(project, params.run, params.path);
      const channel = (await this.#repos.entries.listChannels(log.id)).find((c) => c.channel === params.channel);
      if (!channel) throw notFound(`Channel ${params.channel} of "${params.path}"`, { run: params.run, path: params.path, channel: params.channel });
      target = { entryId: channel.id, producerId: log.id };
      if (channel.status === ENTRY.streaming) {
        this.#targets.set(key, target);
        this.#targetKeys.set(log.id, [...(this.#targetKeys.get(log.id) ?? []), key]);
      }
    }
    if (!this.owners.isOwner(target.producerId, caller)) {
      const channel = await this.#repos.entries.findEntryById(target.entryId);
      if (channel && channel.status !== ENTRY.streaming) throw streamClosed(params.channel, params.path, channel.status);
      throw notOwner(params.path, "stream");
    }
    const appended = this.#repos.chunks.append(target.entryId, params.data, params.seq, ENTRY.streaming);
    queued?.();
    const outcome = await appended;
    switch (outcome.kind) {
      case "closed":
        throw streamClosed(params.channel, params.path, outcome.status);
      case "gap":
        throw new SpoolError("SEQ_GAP", `seq ${params.seq} skips ahead; the next expected is ${outcome.expected}`, { expected: outcome.expected });
      case "mismatch":
        throw conflict(`seq ${outcome.seq} of channel ${params.channel} is stored with other bytes; a retry must resend the same chunk`, { seq: outcome.seq });
      case "duplicate":
        return { channel: params.channel, seq: outcome.seq, bytes: outcome.bytes, duplicate: true };
      case "appended":
        this.watchers.publish(target.entryId, outcome.seq, params.data);
        this.deps.bus.chunk(target.entryId, outcome.seq);
        return { channel: params.channel, seq: outcome.seq, bytes: outcome.bytes, duplicate: false };
    }
  }

  // ---- input: channel 0 -------------------------------------------------------------------------

  /**
   * open (channel 0): the producer's input channel, created at 102 with the first input (or end of input) a
   * client sends, so the record shows what was typed; it finishes with the producer's other channels.
   * Null when the producer has finished.
   */
  async openInput(log: EntryRow): Promise<EntryRow | null> {
    requireAccepted(log);
    const attributes = parseAttributes(log);
    const path = channelPath(String(attributes.tool), log.turn, String(attributes.slug), INPUT_CHANNEL);
    return this.#repos.producers.openChannel(
      log,
      { channel: INPUT_CHANNEL, path, attributes: { command: attributes.command, channel: INPUT_CHANNEL, name: "stdin", log: log.path } },
      ENTRY.streaming,
    );
  }

  /** The producer's live owner, to relay input, signals and resizes to; undefined while it has none. */
  ownerOf(producerId: number): { connection: ConnectionHandle; kind: "runner" | "self" } | undefined {
    return this.owners.ownerOf(producerId);
  }

  // ---- complete · abort · cancel · lose --------------------------------------------------------

  /** complete or abort, by the owner. A producer that has already finished reports its status and changes nothing. */
  async finishByOwner(
    caller: ConnectionHandle,
    project: ProjectRef,
    target: ProducerTarget,
    outcome: Outcome & { kind: "completed" | "aborted" },
  ): Promise<FinishResult> {
    const { run, log } = await this.requireLog(project, target.run, target.path);
    requireAccepted(log);
    if (!this.owners.isOwner(log.id, caller)) {
      const finished = await this.#finishedResult(log);
      if (finished) return finished;
      throw notOwner(target.path, outcome.kind === "completed" ? "stream/completed" : "stream/aborted");
    }
    return this.#finish(project, run, log, outcome);
  }

  /**
   * cancel, by anyone in the project (`by`: who, when known): channels 499 and `stream/cancelled`, so the owner
   * kills the work. The duration recorded runs from the acceptance (when its channels opened) to now: the
   * owner's own figure never arrives, as a finished producer takes no more.
   */
  async cancel(project: ProjectRef, target: ProducerTarget, reason: string, by?: string): Promise<FinishResult> {
    const { run, log } = await this.requireLog(project, target.run, target.path);
    const opened = log.status === ENTRY.done ? (await this.#repos.entries.listChannels(log.id)).map((c) => c.created_at) : [];
    const duration = opened.length > 0 ? Math.max(0, Date.now() - Math.min(...opened)) : undefined;
    const result = await this.#finish(project, run, log, { kind: "cancelled", reason, duration, by });
    if (result.changed) this.deps.notifyProject(project.id, "stream/cancelled", { run: run.alias, path: log.path, reason });
    return result;
  }

  /** lose: the server ends a producer whose owner is gone (runner lost, owner lost, interrupted by a restart, failed dispatch). */
  async lose(producerId: number, reason: string): Promise<FinishResult | null> {
    const log = await this.#repos.entries.findEntryById(producerId);
    const run = log && (await this.#repos.runs.findRunById(log.run_id));
    const project = run && (await this.#repos.projects.findProjectById(run.project_id));
    if (!log || !run || !project) return null;
    return this.#finish({ id: project.id, name: project.name, root: project.root }, run, log, { kind: "aborted", reason });
  }

  async #finishedResult(log: EntryRow): Promise<FinishResult | null> {
    if (log.status !== ENTRY.done) return null;
    const channels = await this.#repos.entries.listChannels(log.id);
    if (channels.length === 0 || channels.some((c) => c.status === ENTRY.streaming)) return null;
    return finishResult(log, channels, false, channels[0]!.status);
  }

  /**
   * Ends every open channel with the outcome's status, rewrites the log entry
   * to one line, ends watchers and announces it; a second call changes nothing.
   */
  async #finish(project: ProjectRef, run: RunRow, log: EntryRow, outcome: Outcome): Promise<FinishResult> {
    requireAccepted(log);
    const status = outcomeStatus(outcome);
    const details = outcomeAttributes(outcome);
    const logAttributes = parseAttributes(log);
    const { changed, channels } = await this.#repos.producers.closeChannels(log, {
      open: ENTRY.streaming,
      status,
      channelAttributes: details,
      log: (rows) => ({
        attributes: {
          ...logAttributes,
          ...details,
          status,
          channels: Object.fromEntries(rows.map((r) => [String(r.channel), { path: r.path, bytes: r.bytes, lines: lineCount(r) }])),
        },
        body: summaryLine(String(logAttributes.command), outcome, rows),
      }),
    });
    if (changed) {
      this.#forget(log.id);
      if (this.deps.bus.shared) await this.#repos.cluster.dropOwner(log.id);
      const exit = outcome.kind === "completed" ? { exit_code: outcome.exit_code ?? null } : {};
      for (const ch of channels) this.watchers.end(ch.id, { status: ch.status, ...exit });
      const notice: z.input<typeof FinishedNotice> = { run: run.alias, path: log.path, status, outcome: outcome.kind, ...exit };
      if (outcome.kind === "completed" && outcome.signal) notice.signal = outcome.signal;
      if ("reason" in outcome) notice.reason = outcome.reason;
      this.deps.notifyProject(project.id, "stream/finished", notice);
      for (const ch of channels) await this.deps.emit("entry:status", { projectId: project.id, run, entry: ch, previous: ENTRY.streaming });
    }
    return finishResult(log, channels, changed, status);
  }

  // ---- ownership: claims, runners, connections that leave, restarts ------------------------------

  /** Makes `connection` the producer's owner; with servers sharing the database, the row says it is on this one. */
  async #own(producerId: number, connection: ConnectionHandle, kind: "runner" | "self"): Promise<void> {
    this.owners.set(producerId, connection, kind);
    if (!this.deps.bus.shared) return;
    await this.#repos.cluster.setOwner(producerId, this.deps.bus.serverId);
    this.deps.bus.publish({ t: "owned", producer: producerId, server: this.deps.bus.serverId });
  }

  /** Another server's connection owns the producer now: this server's owner (or grace) lets go of it. */
  ownedElsewhere(producerId: number): void {
    this.#forget(producerId);
  }

  #forget(producerId: number): void {
    this.owners.forget(producerId);
    for (const key of this.#targetKeys.get(producerId) ?? []) this.#targets.delete(key);
    this.#targetKeys.delete(producerId);
  }

  /** Another server finished the producer: nobody here owns it any more. */
  finishedElsewhere(producerId: number): void {
    this.#forget(producerId);
  }

  /** A connection shows a producer's resume token and becomes its owner (after a reconnect or a restart). */
  async claim(caller: ConnectionHandle, project: ProjectRef, target: ProducerTarget, token: string): Promise<ClaimResult> {
    const { log } = await this.requireLog(project, target.run, target.path);
    const attributes = parseAttributes(log);
    if (log.status !== ENTRY.done || !tokenMatches(token, attributes.ownerKey)) throw notOwner(target.path, "stream/claim");
    const channels = await this.#repos.entries.listChannels(log.id);
    const open = channels.some((c) => c.status === ENTRY.streaming);
    if (open) await this.#own(log.id, caller, this.runners.runnerOf(caller) ? "runner" : "self");
    return {
      path: log.path,
      status: open ? ENTRY.streaming : (channels[0]?.status ?? log.status),
      channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, lastSeq: c.last_seq })),
    };
  }

  /**
   * `runner/attach`: checks the name, the default and, for a re-attach, that
   * every producer it resumes was dispatched to a runner holding the same
   * resume token; only then attaches and takes them back. Any failure changes
   * nothing.
   */
  async attachRunner(
    connection: ConnectionHandle,
    project: ProjectRef,
    params: z.output<typeof RunnerAttachParams>,
  ): Promise<z.input<typeof RunnerAttachResult>> {
    this.runners.check(connection, project, params);
    const claims: { ref: { run: string; path: string }; log: EntryRow | null; channels: EntryRow[] }[] = [];
    for (const ref of params.resume ?? []) {
      const run = await this.#repos.runs.findRun(project.id, ref.run);
      const log = (run && (await this.#repos.entries.findEntry(run.id, ref.path))) ?? null;
      if (log?.scheme !== "log") {
        claims.push({ ref, log: null, channels: [] });
        continue;
      }
      const attributes = parseAttributes(log);
      if (attributes.runner !== params.name || !tokenMatches(params.resumeToken, attributes.ownerKey)) throw notOwner(ref.path, "runner/attach resume");
      claims.push({ ref, log, channels: await this.#repos.entries.listChannels(log.id) });
    }
    // One name (and one default) per project across the servers sharing the database.
    const listed = this.#cluster?.shared && params.name !== this.runners.embeddedName;
    if (listed) {
      const there = await this.#cluster!.runnerServer(project.id, params.name);
      if (there !== null)
        throw conflict(`A runner named "${params.name}" is attached to another server of this database (server ${there})`, { name: params.name });
      const defaultThere = params.default ? await this.#cluster!.runnerServer(project.id, null) : null;
      if (defaultThere !== null) {
        throw conflict(`Project "${project.name}" has a default runner on another server of this database (server ${defaultThere}); attach without default`, {
          name: params.name,
        });
      }
    }
    const { runner, token, replaced } = this.runners.attach(connection, project, params);
    if (listed) await this.#repos.cluster.placeRunner(project.id, runner.name, this.deps.bus.serverId, runner.default);
    if (replaced && replaced.connection !== connection) {
      // The same runner came back on a new connection before the old one was noticed dead.
      for (const { id } of this.owners.release(replaced.connection)) this.owners.set(id, connection, "runner");
      replaced.connection.close(4001, "replaced by a new attach of the same runner");
    }
    const resumed: z.input<typeof RunnerAttachResult>["resumed"] = [];
    const finished: z.input<typeof RunnerAttachResult>["finished"] = [];
    for (const { ref, log, channels } of claims) {
      if (!log) finished.push({ ...ref, status: 404 });
      else if (channels.some((c) => c.status === ENTRY.streaming)) {
        await this.#own(log.id, connection, "runner");
        resumed.push({ ...ref, lastSeq: Object.fromEntries(channels.map((c) => [String(c.channel), c.last_seq])) });
      } else finished.push({ ...ref, status: channels[0]?.status ?? log.status });
    }
    this.deps.log.info(`runner ${runner.name} (${runner.backend}) attached to project ${project.name}; resumed ${resumed.length}`);
    return {
      name: runner.name,
      project: project.name,
      resumed,
      finished,
      maxUnackedChunks: this.deps.config.limits.maxUnackedChunks,
      resumeToken: token,
      default: runner.default,
      runnerGraceMs: this.deps.config.runnerGraceMs,
    };
  }

  /** The producers a runner is executing (open channels), for runner/list. */
  async runningOn(project: ProjectRef, runner: string): Promise<number> {
    return (await this.#repos.producers.listRunnerProducers(project.id, runner, ENTRY.streaming)).length;
  }

  /** A connection went away: the producers it owned wait the grace period for their owner, then end 499. */
  connectionClosed(connection: ConnectionHandle): void {
    const owned = this.owners.release(connection);
    const grace = this.deps.config.runnerGraceMs;
    const runner = this.runners.detach(connection, owned.length > 0 ? grace : 0);
    if (runner && this.deps.bus.shared && !runner.embedded) {
      this.#repos.cluster
        .unplaceRunner(runner.projectId, runner.name, this.deps.bus.serverId)
        .catch((error: unknown) => this.deps.log.warn(`cluster: could not unlist runner ${runner.name}: ${String(error)}`));
    }
    if (owned.length === 0) return;
    const who = runner ? `runner ${runner.name}` : `connection ${connection.id}`;
    this.deps.log.warn(`${who} went away owning ${owned.length} producer(s); they have ${grace} ms for it to come back`);
    for (const { id, kind } of owned) this.#graceThenLose(id, kind === "runner" ? "runner lost" : "owner lost");
  }

  /**
   * After the grace, the producer ends 499 unless its owner came back: here (a live owner), or on another
   * server sharing the database (its owner row names that server now).
   */
  #graceThenLose(producerId: number, reason: string): void {
    this.owners.startGrace(producerId, this.deps.config.runnerGraceMs, () => {
      void (async () => {
        if (this.deps.bus.shared && (await this.#repos.cluster.ownerServer(producerId)) !== this.deps.bus.serverId) return;
        await this.lose(producerId, reason);
      })().catch((error: unknown) => this.deps.log.error(`could not end producer ${producerId} (${reason})`, error));
    });
  }

  /**
   * Producers left streaming by a server that stopped (this one before a restart, or another one sharing the
   * database) are adopted by this server, each by one server only (a lock in the database decides); they wait
   * the grace for their owner to claim them, then end 499 with `reason`.
   */
  async adoptOrphans(reason = "interrupted"): Promise<void> {
    const bus = this.deps.bus;
    const orphans = bus.shared
      ? await this.#repos.cluster.adoptOrphans(bus.serverId, await bus.alive(), ENTRY.streaming)
      : await this.#repos.entries.listProducersWithChannelsAt(ENTRY.streaming);
    if (orphans.length === 0) return;
    this.deps.log.info(`${orphans.length} producer(s) were streaming when their server stopped; they have ${this.deps.config.runnerGraceMs} ms to resume`);
    for (const id of orphans) this.#graceThenLose(id, reason);
  }

  async stop(): Promise<void> {
    this.owners.stop();
    await this.runners.stop();
  }
}

/**
 * A cwd as a path relative to the project root ("" is the root), judged where it really leads: the root and
 * the directory are resolved through symbolic links (`realpath`), so a link inside the root cannot lead
 * outside it. A directory that does not exist yet is judged by its deepest existing ancestor. The relative
 * path returned is the resolved one, so what runs is what was checked. Outside the root only when the
 * configuration allows it.
 */
function confineCwd(project: ProjectRef, cwd: string | undefined, allowOutside: boolean): string {
  if (cwd === undefined) return "";
  if (cwd.includes("\0")) throw invalid("cwd", "a directory must not contain NUL bytes");
  const root = realPath(project.root);
  const target = realPath(resolve(project.root, cwd));
  if (root === null || target === null) throw invalid("cwd", `"${cwd}" does not resolve to a directory (a dangling or looping link, or a file on the way)`);
  const rel = relative(root, target);
  if (!allowOutside && (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel))) {
    throw invalid("cwd", `"${cwd}" is outside the project root (limits.allowCwdOutsideRoot is off)`);
  }
  return rel;
}

/**
 * The real path of `path`: the realpath of its deepest existing ancestor, then the names that do not exist
 * yet. Null when it cannot be resolved: a dangling link (where it leads could appear later), a loop, a file
 * where a directory should be, or no permission to look.
 */
function realPath(path: string): string | null {
  const missing: string[] = [];
  for (let current = path; ; ) {
    try {
      return join(realpathSync.native(current), ...missing);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") return null;
      try {
        lstatSync(current);
        return null; // it exists, yet does not resolve: a dangling symbolic link
      } catch {
        // really missing: judge it by its parent
      }
      const parent = dirname(current);
      if (parent === current) return null;
      missing.unshift(basename(current));
      current = parent;
    }
  }
}

/** The loop and tool call of the model that made a proposal (null for a client's proposal). */
function modelCall(attributes: Attributes): { loop: number | null; toolCallId: string | null } {
  return {
    loop: typeof attributes.loop === "number" ? attributes.loop : null,
    toolCallId: typeof attributes.toolCallId === "string" ? attributes.toolCallId : null,
  };
}

export function proposalNotice(runAlias: string, row: EntryRow): z.output<typeof ProposalNotice> {
  const attributes = parseAttributes(row);
  return {
    run: runAlias,
    path: row.path,
    tool: String(attributes.tool),
    command: String(attributes.command),
    attributes,
    turn: row.turn,
    ...modelCall(attributes),
    createdAt: row.created_at,
  };
}

function finishResult(log: EntryRow, channels: EntryRow[], changed: boolean, status: number): FinishResult {
  return {
    path: log.path,
    status: channels[0]?.status ?? status,
    changed,
    channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, bytes: c.bytes, lines: lineCount(c) })),
  };
}

/** Only an accepted proposal has data channels to finish. */
function requireAccepted(log: EntryRow): void {
  if (log.status === ENTRY.done) return;
  throw conflict(`"${log.path}" has no data channels: it is ${log.status === ENTRY.proposed ? "still a pending proposal" : `at status ${log.status}`}`, {
    status: log.status,
  });
}

const streamClosed = (channel: number, path: string, status: number) =>
  new SpoolError("STREAM_CLOSED", `Channel ${channel} of "${path}" has finished (status ${status})`, { status });

const notOwner = (path: string, method: string) =>
  new SpoolError("NOT_OWNER", `Only the owner of "${path}" (its runner, or the connection that accepted it with runner "self") may call ${method}`, { path });

export type { Attributes };
