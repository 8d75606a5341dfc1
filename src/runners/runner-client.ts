import { isAbsolute, join } from "node:path";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { ConnectionClosedError, type SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import type { Logger } from "../logger.js";
import {
  ProducerEofParams,
  ProducerInputParams,
  ProducerResizeParams,
  ProducerSignalParams,
  type RunnerAttachResult,
  RunnerExecParams,
  type RunnerExecResult,
} from "../protocol/runner.js";
import { loaderVariables, loaderVariablesMessage } from "../protocol/sandbox.js";
import { ERRORS } from "../rpc/errors.js";
import { SERVER_VERSION } from "../version.js";
import { type Backend, ControlError, type ExecResult, type ExecutionControl, StartError } from "./backend.js";
import { ChannelSender, Slots } from "./channel-sender.js";
import { commandVariables } from "./environment.js";
import { ValueLink } from "./value-link.js";

export interface RunnerClientOptions {
  /** Opens a fresh connection to the server (WebSocket, or in-process for the embedded runner). */
  connect: () => Promise<SpoolClient>;
  project: string;
  name: string;
  backend: Backend;
  default?: boolean;
  /** With default: take the default from the runner that has it. */
  replaceDefault?: boolean;
  labels?: Record<string, string>;
  /**
   * Where the project root is on the backend. Without it, local runners use
   * the server's absolute path and remote ones run relative to their default
   * directory (container WORKDIR, login directory).
   */
  root?: string;
  /** Unacknowledged chunks per channel. */
  window?: number;
  /** Unacknowledged calls on the whole connection (never more than the server allows). */
  maxInFlight?: number;
  maxChunkBytes?: number;
  log: Logger;
  /** Reconnect delays: doubles from `min` up to `max`. */
  backoffMs?: { min: number; max: number };
  /** Names (or `*` patterns) of this runner's environment variables that commands also get, besides those the server's commandEnv names. */
  passEnv?: string[];
  /** The runner's environment, where passed names take their values; default process.env. */
  environ?: NodeJS.ProcessEnv;
  /** Paths of this runner's own state (its home, token file) that sandboxed commands must not see, besides those the server names. */
  hide?: string[];
  /** Told when a command starts and when it ends (for the runner's one line per command). */
  onCommand?: (event: CommandEvent) => void;
}

/** A command this runner took: when it started, and how it ended. */
export type CommandEvent =
  | { kind: "started"; run: string; path: string; command: string }
  | {
      kind: "ended";
      run: string;
      path: string;
      /** How it ended, for people: "exit 0", "signal SIGKILL", "timed out after 1000 ms", "cancelled: …", "failed to start: …". */
      outcome: string;
      durationMs: number;
    };

interface Job {
  params: RunnerExecParams;
  controller: AbortController;
  senders: Map<number, ChannelSender>;
  /** The server finished the producer (cancel, runner lost): nothing more is sent for it. */
  closedByServer: boolean;
  /** Why the runner itself stopped the work, when it did. */
  stoppedBecause?: string;
  done: Promise<void>;
  /** Input, signals and resizes for the running command (absent when its backend offers none). */
  control?: ExecutionControl;
  /** The last input seq written: a repeat (the server's relay retried after a reconnect) is acknowledged without writing again. */
  inputSeq: number;
  /** The command has ended: controls are refused as STREAM_CLOSED. */
  ended: boolean;
  /**
   * Resolves once the process is located: a remote wrapper prints its pid first, and a terminal would
   * echo input typed before that into the line the pid is read from.
   */
  located: Promise<unknown>;
}

type Refusal = "UNSUPPORTED" | "STREAM_CLOSED" | "LIMIT_EXCEEDED";

/** An error reply the server passes on to the client that sent the control. */
const refuse = (code: Refusal, message: string) => new SpoolRpcError(message, ERRORS[code].code, { code });

const REFUSALS: Record<ControlError["kind"], Refusal> = { unsupported: "UNSUPPORTED", closed: "STREAM_CLOSED", busy: "LIMIT_EXCEEDED" };

/**
 * A runner: a client connection that attaches under a name, executes the
 * `runner/exec` requests it gets on its backend, streams stdout and stderr
 * with `seq` and a bounded window, finishes each producer, kills work named by
 * `stream/cancelled`, and reconnects (resending what was not acknowledged)
 * when its connection drops.
 */
export class RunnerClient {
  #client: SpoolClient | null = null;
  /** Per transport: its value link when it is in process (chunks go as Buffers), else null (JSON text through the client). */
  readonly #valueLinks = new WeakMap<object, ValueLink | null>();
  #stopping = false;
  #reconnecting: Promise<void> | null = null;
  readonly #jobs = new Map<string, Job>();
  /** Commands being started: controls that arrive meanwhile wait for them. */
  readonly #starting = new Map<string, Promise<Job | null>>();
  /** Unacknowledged calls on the connection, shared by every channel and finishing call (the server caps them). */
  readonly #slots = new Slots(192);
  #connectedWaiters: (() => void)[] = [];
  /** What the first attach returned: shown on every re-attach to prove this is the same runner. */
  #resumeToken: string | undefined;
  /** The server's grace for a runner to come back, told at attach: reconnect attempts are never further apart than a quarter of it. */
  #graceMs: number | null = null;

  constructor(private readonly options: RunnerClientOptions) {}

  get name(): string {
    return this.options.name;
  }

  get running(): number {
    return this.#jobs.size;
  }

  /** Connects and attaches; rejects when the first attach fails (wrong token, name taken, …). */
  async start(): Promise<RunnerAttachResult> {
    const sandbox = await this.options.backend.sandbox();
    if (!sandbox.readOnly) {
      this.options.log.warn(`runner ${this.options.name}: no read-only sandbox (${sandbox.detail}); read-only work (env, ask runs) will be refused on it`);
    }
    return this.#connect();
  }

  /** Kills running work, reports it aborted ("runner stopped"), detaches. */
  async stop(reason = "runner stopped"): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const job of this.#jobs.values()) {
      job.stoppedBecause = reason;
      job.controller.abort();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.#jobs.values()].map((j) => j.done)),
      new Promise((r) => {
        timer = setTimeout(r, 5_000);
      }),
    ]);
    clearTimeout(timer);
    this.#client?.close();
    this.#client = null;
    this.#wakeConnected();
    await this.options.backend.close();
  }

  /** What chunks are sent through: the connection's value link in process, else its client. */
  #streamVia(): ValueLink | SpoolClient | null {
    const client = this.#client;
    if (!client) return null;
    const transport = client.transport;
    let link = this.#valueLinks.get(transport);
    if (link === undefined) {
      link = ValueLink.over(transport);
      this.#valueLinks.set(transport, link);
    }
    return link ?? client;
  }

  async #connect(): Promise<RunnerAttachResult> {
    const client = await this.options.connect();
    try {
      client.handle("runner/exec", (params: unknown) => this.#exec(RunnerExecParams.parse(params)));
      client.on("stream/cancelled", (p: { run: string; path: string }) => this.#serverFinished(p.run, p.path));
      client.handle("producer/input", async (params: unknown) => {
        const p = ProducerInputParams.parse(params);
        const job = await this.#controlled(p.run, p.path);
        if (p.seq <= job.inputSeq) return { applied: true };
        this.#apply(() => job.control!.write(Buffer.from(p.data, "base64")));
        job.inputSeq = p.seq;
        return { applied: true };
      });
      client.handle("producer/eof", async (params: unknown) => {
        const p = ProducerEofParams.parse(params);
        const job = await this.#controlled(p.run, p.path);
        this.#apply(() => job.control!.end());
        return { applied: true };
      });
      client.handle("producer/signal", async (params: unknown) => {
        const p = ProducerSignalParams.parse(params);
        const job = await this.#controlled(p.run, p.path);
        await this.#applyAsync(() => job.control!.signal(p.signal));
        return { applied: true };
      });
      client.handle("producer/resize", async (params: unknown) => {
        const p = ProducerResizeParams.parse(params);
        const job = await this.#controlled(p.run, p.path);
        await this.#applyAsync(() => job.control!.resize({ cols: p.cols, rows: p.rows }));
        return { applied: true };
      });
      await client.initialize(this.options.project, { client: { name: `spool-runner/${this.options.name}`, version: SERVER_VERSION } });
      const attached = await client.request<RunnerAttachResult>("runner/attach", {
        name: this.options.name,
        backend: this.options.backend.kind,
        description: this.options.backend.describe(),
        ...(this.options.labels ? { labels: this.options.labels } : {}),
        ...(this.options.default ? { default: true } : {}),
        ...(this.options.replaceDefault ? { replaceDefault: true } : {}),
        ...(this.#resumeToken ? { resumeToken: this.#resumeToken } : {}),
        resume: [...this.#jobs.values()].map((j) => ({ run: j.params.run, path: j.params.path })),
        sandbox: await this.options.backend.sandbox(),
        ...(this.options.backend.container ? { container: await this.options.backend.container() } : {}),
      });
      this.#resumeToken = attached.resumeToken;
      this.#graceMs = attached.runnerGraceMs;
      client.onClose(() => this.#lost(client));
      // Stay under the server's cap, keeping a few slots for finishing calls' bursts.
      this.#slots.capacity = Math.max(1, Math.min(this.options.maxInFlight ?? 192, attached.maxUnackedChunks - 4));
      this.#client = client;
      for (const f of attached.finished) this.#serverFinished(f.run, f.path);
      for (const r of attached.resumed) {
        const job = this.#jobs.get(jobKey(r.run, r.path));
        for (const [channel, sender] of job?.senders ?? []) sender.resume(r.lastSeq[String(channel)] ?? 0);
      }
      this.#wakeConnected();
      return attached;
    } catch (error) {
      client.close();
      throw error;
    }
  }

  #lost(client: SpoolClient): void {
    if (this.#client !== client) return;
    this.#client = null;
    if (this.#stopping) return;
    this.options.log.warn(`runner ${this.options.name}: connection lost; reconnecting`);
    this.#reconnecting ??= this.#reconnect().finally(() => {
      this.#reconnecting = null;
    });
  }

  async #reconnect(): Promise<void> {
    const { min, max: configuredMax } = this.options.backoffMs ?? { min: 100, max: 5_000 };
    // The server gives up on this runner's producers after its grace (counted from its restart, or from the drop):
    // a longer pause between attempts could miss that window even though the server is back.
    const max = this.#graceMs === null ? configuredMax : Math.max(min, Math.min(configuredMax, Math.floor(this.#graceMs / 4)));
    for (let delay = min; !this.#stopping; delay = Math.min(max, delay * 2)) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.#stopping) return;
      try {
        const attached = await this.#connect();
        this.options.log.info(`runner ${this.options.name}: reconnected; resumed ${attached.resumed.length}, finished ${attached.finished.length}`);
        return;
      } catch (error) {
        this.options.log.warn(`runner ${this.options.name}: reconnect failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  #wakeConnected(): void {
    const waiters = this.#connectedWaiters;
    this.#connectedWaiters = [];
    for (const w of waiters) w();
  }

  /** Calls a method, waiting through reconnects; resolves null when the runner stops first. */
  async #reliably<T>(method: string, params: object): Promise<T | null> {
    while (!this.#stopping || this.#client) {
      const client = this.#client;
      if (!client) {
        await new Promise<void>((r) => this.#connectedWaiters.push(r));
        continue;
      }
      await this.#slots.acquire();
      try {
        return await client.request<T>(method, params);
      } catch (error) {
        if (error instanceof ConnectionClosedError) continue;
        throw error;
      } finally {
        this.#slots.release();
      }
    }
    return null;
  }

  /** The running job a control names; refused when it is not running here or cannot be controlled. */
  async #controlled(run: string, path: string): Promise<Job & { control: ExecutionControl }> {
    const key = jobKey(run, path);
    const job = this.#jobs.get(key) ?? (await this.#starting.get(key)) ?? null;
    if (!job || job.ended || job.closedByServer) throw refuse("STREAM_CLOSED", `${path} is not running on runner ${this.options.name}`);
    if (!job.control) throw refuse("UNSUPPORTED", `the ${this.options.backend.kind} backend of runner ${this.options.name} cannot take input for ${path}`);
    await job.located;
    return job as Job & { control: ExecutionControl };
  }

  #apply(action: () => void): void {
    try {
      action();
    } catch (error) {
      if (error instanceof ControlError) throw refuse(REFUSALS[error.kind], error.message);
      throw error;
    }
  }

  async #applyAsync(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      if (error instanceof ControlError) throw refuse(REFUSALS[error.kind], error.message);
      throw error;
    }
  }

  #serverFinished(run: string, path: string): void {
    const job = this.#jobs.get(jobKey(run, path));
    if (!job || job.closedByServer) return;
    job.closedByServer = true;
    for (const sender of job.senders.values()) sender.refuse();
    job.controller.abort();
  }

  /** The project root as the server sees it, when the command's directory is inside it (the server sends root + relative). */
  #project(params: RunnerExecParams): { root: string; cwd: string } | undefined {
    const root = projectRoot(params.cwd, params.cwdRelative);
    return root === null ? undefined : { root, cwd: params.cwdRelative };
  }

  /** The project root on the backend: --root, else the server's path for a local backend; remote ones decide (the login directory). */
  #workspace(project: { root: string } | undefined): string | undefined {
    if (this.options.root) return this.options.root;
    return this.options.backend.kind === "local" ? project?.root : undefined;
  }

  #cwd(params: RunnerExecParams): string | undefined {
    const { root } = this.options;
    if (root) return params.cwdRelative ? join(root, params.cwdRelative) : root;
    if (this.options.backend.kind === "local") return params.cwd;
    return params.cwdRelative ? params.cwdRelative : undefined;
  }

  async #exec(params: RunnerExecParams): Promise<RunnerExecResult> {
    const key = jobKey(params.run, params.path);
    if (this.#jobs.has(key) || this.#starting.has(key)) return { started: true };
    if (this.#stopping) return { started: false, error: "the runner is stopping" };
    const controller = new AbortController();
    const cwd = this.#cwd(params);
    const project = this.#project(params);
    const workspace = this.#workspace(project);
    const { run, path } = params;
    this.options.onCommand?.({ kind: "started", run, path, command: params.command });
    let started!: (job: Job | null) => void;
    this.#starting.set(
      key,
      new Promise<Job | null>((resolve) => {
        started = resolve;
      }),
    );
    let execution: Awaited<ReturnType<Backend["start"]>>;
    try {
      // Defence in depth: the server refuses these at proposal time already.
      const loader = loaderVariables(params.env);
      if (loader.length > 0) throw new StartError(loaderVariablesMessage(loader));
      const sandbox = params.sandbox ?? (params.readOnly ? "read-only" : "full");
      execution = await this.options.backend.start({
        command: params.command,
        ...(cwd !== undefined ? { cwd } : {}),
        ...(project ? { project } : {}),
        // Only what the server's commandEnv and this runner's passEnv name, and the proposal's env: never the runner's whole environment.
        env: commandVariables(this.options.environ ?? process.env, [...(params.passEnv ?? []), ...(this.options.passEnv ?? [])], params.env, (names) =>
          this.options.log.warn(
            `runner ${this.options.name}: withheld from the command: ${names.join(", ")} (their values carry credentials; name them exactly in commandEnv or --pass-env to pass them)`,
          ),
        ),
        ...(params.readOnly ? { readOnly: true } : {}),
        ...(sandbox !== "full"
          ? {
              sandbox: {
                mode: sandbox,
                ...(params.network !== undefined ? { network: params.network } : {}),
                hide: [...(params.hide ?? []), ...(this.options.hide ?? [])],
              },
            }
          : {}),
        ...(workspace !== undefined ? { workspace } : {}),
        timeoutMs: params.timeoutMs,
        signal: controller.signal,
        // stdin stays open for stream/input until stream/eof or the command's exit.
        interactive: true,
        ...(params.tty ? { tty: params.tty } : {}),
      });
    } catch (error) {
      this.#starting.delete(key);
      started(null);
      const message = error instanceof Error ? error.message : String(error);
      this.options.onCommand?.({ kind: "ended", run, path, outcome: `failed to start: ${message}`, durationMs: 0 });
      await this.#reliably("stream/aborted", { run: params.run, path: params.path, reason: `failed to start: ${message}`, duration: 0 }).catch(() => undefined);
      return { started: false, error: message };
    }
    const job: Job = {
      params,
      controller,
      senders: new Map(),
      closedByServer: false,
      done: Promise.resolve(),
      ...(execution.control ? { control: execution.control } : {}),
      inputSeq: 0,
      ended: false,
      located: execution.located.catch(() => undefined),
    };
    for (const c of params.channels) {
      job.senders.set(
        c.channel,
        new ChannelSender(
          {
            current: () => this.#streamVia(),
            tryAcquire: () => this.#slots.tryAcquire(),
            release: () => this.#slots.release(),
            whenFree: (wake) => this.#slots.whenFree(wake),
          },
          { run: params.run, path: params.path, channel: c.channel },
          {
            window: this.options.window ?? 8,
            maxChunkBytes: this.options.maxChunkBytes ?? 64 * 1024,
            highWaterBytes: 256 * 1024,
            onRefused: (error) => {
              this.options.log.info(`runner ${this.options.name}: ${params.path} channel ${c.channel} refused (${error.errorCode}); stopping it`);
              // Finished or gone on the server: nothing more to say. Anything else: stop the work and report why.
              if (error.errorCode === "STREAM_CLOSED" || error.errorCode === "NOT_FOUND") return this.#serverFinished(params.run, params.path);
              const job = this.#jobs.get(key);
              if (job && !job.stoppedBecause) {
                job.stoppedBecause = `runner could not stream channel ${c.channel}: ${error.message}`;
                for (const sender of job.senders.values()) sender.refuse();
                job.controller.abort();
              }
            },
          },
        ),
      );
    }
    this.#jobs.set(key, job);
    this.#starting.delete(key);
    started(job);
    job.done = this.#pump(job, execution.stdout, execution.stderr, execution.result).finally(() => this.#jobs.delete(key));
    // Output is already being read, so waiting for the remote pid cannot block the process.
    return { started: true, target: await execution.located };
  }

  async #pump(job: Job, stdout: Readable, stderr: Readable, result: Promise<ExecResult>): Promise<void> {
    // Read with 'data' events, paused only while the sender has no room: an async iterator would cost a few
    // promises per chunk read, and a runner reads one chunk per line of a line-buffered command.
    const drain = async (channel: number, stream: Readable) => {
      const sender = job.senders.get(channel);
      const read = finished(stream);
      stream.on("data", (chunk: Buffer) => {
        const room = sender && !sender.refused ? sender.push(chunk) : undefined;
        if (room) {
          stream.pause();
          void room.then(() => stream.resume());
        }
      });
      await read;
      await sender?.end();
    };
    await Promise.all([drain(1, stdout), drain(2, stderr)]);
    const outcome = await result;
    job.ended = true;
    const { run, path } = job.params;
    const duration = outcome.durationMs;
    this.options.onCommand?.({ kind: "ended", run, path, outcome: describeOutcome(outcome, job), durationMs: duration });
    if (job.closedByServer) return;
    const finish = () =>
      outcome.timedOut
        ? this.#reliably("stream/aborted", { run, path, reason: `timed out after ${job.params.timeoutMs} ms`, duration })
        : // A channel given up lost output, even when the process had exited before: never "completed".
          outcome.cancelled || [...job.senders.values()].some((sender) => sender.refused)
          ? this.#reliably("stream/aborted", { run, path, reason: job.stoppedBecause ?? "cancelled by the runner", duration })
          : this.#reliably("stream/completed", { run, path, exit_code: outcome.exitCode, signal: outcome.signal, duration });
    // Finishing is idempotent on the server: a failure the server may get over (its store busy or full, an internal
    // error) is tried again a few times, so the producer does not stay open for want of its end.
    for (let attempt = 1; ; attempt++) {
      try {
        await finish();
        return;
      } catch (error) {
        const retriable = error instanceof SpoolRpcError && (error.code === -32603 || error.data?.retriable === true);
        if (!retriable || attempt >= FINISH_ATTEMPTS || this.#stopping) {
          this.options.log.warn(`runner ${this.options.name}: could not finish ${path}: ${error instanceof Error ? error.message : String(error)}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }
}

/** Tries at finishing a producer when the server answers with an error it may get over (100 ms, 200 ms, … apart). */
const FINISH_ATTEMPTS = 6;

const jobKey = (run: string, path: string) => `${run}\u0000${path}`;

function describeOutcome(outcome: ExecResult, job: Job): string {
  if (outcome.timedOut) return `timed out after ${job.params.timeoutMs} ms`;
  if (job.closedByServer) return "cancelled on the server";
  if (outcome.cancelled) return `stopped: ${job.stoppedBecause ?? "cancelled by the runner"}`;
  if (outcome.exitCode !== null) return `exit ${outcome.exitCode}`;
  return outcome.signal ? `signal ${outcome.signal}` : "exit unknown";
}

/**
 * The project root from `runner/exec`'s absolute `cwd` and its `cwdRelative`; null when the
 * directory is outside the root (then the root cannot be told from it).
 */
export function projectRoot(cwd: string, cwdRelative: string): string | null {
  if (cwdRelative === "") return cwd;
  if (isAbsolute(cwdRelative) || cwdRelative === ".." || cwdRelative.startsWith("../")) return null;
  const suffix = `/${cwdRelative}`;
  if (!cwd.endsWith(suffix)) return null;
  return cwd.slice(0, -suffix.length) || "/";
}

/**
 * A `connect` for servers sharing one database: tries each URL in turn, starting with the one that answered
 * last, so a runner whose server died reconnects to another and resumes there.
 */
export function firstAnswering(urls: readonly string[], connect: (url: string) => Promise<SpoolClient>): () => Promise<SpoolClient> {
  if (urls.length === 0) throw new Error("no server URL to connect to");
  let at = 0;
  return async () => {
    let last: unknown;
    for (let i = 0; i < urls.length; i++) {
      const index = (at + i) % urls.length;
      try {
        const client = await connect(urls[index]!);
        at = index;
        return client;
      } catch (error) {
        last = error;
      }
    }
    throw last;
  };
}
