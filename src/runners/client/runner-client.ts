import { hostname } from "node:os";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { ConnectionClosedError, type SpoolClient, SpoolRpcError } from "../../client/spool-client.js";
import { ConnectError } from "../../client/ws-transport.js";
import { type RunnerAttachResult, RunnerExecParams, type RunnerExecResult } from "../../protocol/runner.js";
import { SERVER_VERSION } from "../../version.js";
import type { Backend, ExecResult, ExecutionControl } from "../backend.js";
import { ChannelSender, Slots } from "./channel-sender.js";
import { handleControls, refuse } from "./controls.js";
import { execSpec } from "./exec-spec.js";
import { describeOutcome, FINISH_ATTEMPTS, type Job, jobKey } from "./job.js";
import type { RunnerClientOptions } from "./options.js";
import { ValueLink } from "./value-link.js";

export { projectRoot } from "./exec-spec.js";
export { firstAnswering } from "./first-answering.js";
export type { CommandEvent, RunnerClientOptions } from "./options.js";

/** The close code a server ends a connection with when its credential was revoked or expired, and the reasons it gives. */
const POLICY_VIOLATION = 1008;
const CREDENTIAL_ENDED = /^credential (revoked|expired)$/;
const HTTP_UNAUTHORIZED = 401;

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
  /** Commands holding one of its capacity's slots, and those waiting for one (options.capacity). */
  #held = 0;
  readonly #slotWaiters: (() => void)[] = [];
  /** Woken each time a command ends or fails to start: `drain` waits for none to be left. */
  #idleWaiters: (() => void)[] = [];
  /** What the first attach returned: shown on every re-attach to prove this is the same runner. */
  #resumeToken: string | undefined;
  /** The server's grace for a runner to come back, told at attach: reconnect attempts are never further apart than a quarter of it. */
  #graceMs: number | null = null;
  /** Set while the server is lost: when it fires, this runner's commands are stopped (see `#orphaned`). */
  #orphanTimer: NodeJS.Timeout | null = null;
  #refuse!: (why: string) => void;
  #refusedBecause: string | null = null;
  /** The project's root on the server's machine: initialize's answer. */
  #serverRoot: string | undefined;
  /**
   * Resolves with why, when the server no longer takes this runner's credential (revoked or expired: it closed the
   * connection saying so, or a reconnect got HTTP 401). The runner then stops reconnecting: no retry can succeed.
   */
  readonly refused = new Promise<string>((resolve) => {
    this.#refuse = resolve;
  });

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
    // A sandbox without a network of its own changes the network fact every client shows (and the rules that hold it).
    if (sandbox.kind === "bwrap" && sandbox.network === "shared") {
      // The local runner's detail says why (no slirp4netns); an SSH host's sandbox always shares the host's network.
      const at = sandbox.detail.indexOf("workspace-write commands share");
      const why =
        at >= 0
          ? sandbox.detail.slice(at)
          : `workspace-write commands share the network of the ${this.options.backend.kind === "ssh" ? "SSH host" : "runner's machine"}: they can reach and bind its loopback ports`;
      this.options.log.warn(`runner ${this.options.name}: ${why}`);
    }
    return this.#connect();
  }

  /**
   * Takes nothing new and lets what runs end: asks the server to drain this runner (`runner/drain` on its own name,
   * held across reconnects), then resolves once every command it runs has ended and its end has been reported.
   * Rejects when the server refuses the drain (then it may still send work: the caller stops instead).
   */
  async drain(): Promise<void> {
    await this.#reliably("runner/drain", { name: this.options.name, drain: true });
    while (this.#jobs.size > 0 || this.#starting.size > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Kills running work, reports it aborted ("runner stopped"), detaches. */
  async stop(reason = "runner stopped"): Promise<void> {
    if (this.#orphanTimer) clearTimeout(this.#orphanTimer);
    this.#orphanTimer = null;
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

  /** The project's root as the server has it (its path on the server's machine), once joined. */
  get serverRoot(): string | undefined {
    return this.#serverRoot;
  }

  /** Where this runner runs the project root's commands, when not at the server's path (exec-spec.ts `cwdOf`; Backend.root). */
  async root(): Promise<string | undefined> {
    return this.options.root ?? (await this.options.backend.root?.());
  }

  async #connect(): Promise<RunnerAttachResult> {
    const client = await this.options.connect();
    try {
      client.handle("runner/exec", (params: unknown) => this.#exec(RunnerExecParams.parse(params)));
      client.on("stream/cancelled", (p: { run: string; path: string }) => this.#serverFinished(p.run, p.path));
      handleControls(client, (run, path) => this.#controlled(run, path));
      const joined = await client.initialize(this.options.project, { client: { name: `spool-runner/${this.options.name}`, version: SERVER_VERSION } });
      // Shown in the runner's first lines only: an answer without it (a scripted or older server) leaves it unknown.
      this.#serverRoot = joined.project?.root;
      const root = await this.root();
      const attached = await client.request<RunnerAttachResult>("runner/attach", {
        name: this.options.name,
        backend: this.options.backend.kind,
        description: this.options.backend.describe(),
        ...(this.options.labels ? { labels: this.options.labels } : {}),
        ...(this.options.capacity !== undefined ? { capacity: this.options.capacity } : {}),
        ...(this.options.default ? { default: true } : {}),
        ...(this.options.replaceDefault ? { replaceDefault: true } : {}),
        ...(this.#resumeToken ? { resumeToken: this.#resumeToken } : {}),
        resume: [...this.#jobs.values()].map((j) => ({ run: j.params.run, path: j.params.path })),
        sandbox: await this.options.backend.sandbox(),
        ...(this.options.backend.container ? { container: await this.options.backend.container() } : {}),
        host: hostname(),
        // Where the project root's commands run (--root; an SSH runner without one: its login directory; Docker without
        // the project mounted: the WORKDIR), shown with every proposal's cwd.
        ...(root ? { root } : {}),
      });
      this.#resumeToken = attached.resumeToken;
      this.#graceMs = attached.runnerGraceMs;
      if (this.#orphanTimer) clearTimeout(this.#orphanTimer);
      this.#orphanTimer = null;
      client.onClose((code, reason) => this.#lost(client, code, reason));
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

  #lost(client: SpoolClient, code: number, reason: string): void {
    if (this.#client !== client) return;
    this.#client = null;
    if (this.#stopping) return;
    const ended = code === POLICY_VIOLATION ? CREDENTIAL_ENDED.exec(reason) : null;
    if (ended) {
      this.#giveUp(`its credential ${ended[1] === "revoked" ? "was revoked" : "has expired"} (the server closed its connection with ${code}: ${reason})`);
      return;
    }
    this.options.log.warn(`runner ${this.options.name}: connection lost; reconnecting`);
    this.#orphanTimer ??= this.#graceMs === null ? null : setTimeout(() => this.#orphaned(), stopBeforeServer(this.#graceMs));
    this.#reconnecting ??= this.#reconnect().finally(() => {
      this.#reconnecting = null;
    });
  }

  async #reconnect(): Promise<void> {
    const { min, max: configuredMax } = this.options.backoffMs ?? { min: 100, max: 5_000 };
    // The server gives up on this runner's producers after its grace (counted from its restart, or from the drop):
    // a longer pause between attempts could miss that window even though the server is back.
    const max = this.#graceMs === null ? configuredMax : Math.max(min, Math.min(configuredMax, Math.floor(this.#graceMs / 4)));
    for (let delay = min; !this.#stopping && this.#refusedBecause === null; delay = Math.min(max, delay * 2)) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.#stopping) return;
      try {
        const attached = await this.#connect();
        this.options.log.info(`runner ${this.options.name}: reconnected; resumed ${attached.resumed.length}, finished ${attached.finished.length}`);
        return;
      } catch (error) {
        if (error instanceof ConnectError && error.status === HTTP_UNAUTHORIZED) {
          this.#giveUp("its credential was revoked or has expired (reconnecting, the server answered HTTP 401: it does not know it)");
          return;
        }
        this.options.log.warn(`runner ${this.options.name}: reconnect failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  /**
   * The server has been gone for most of its grace: after it, it tells every client this runner's commands were
   * aborted, so they must have stopped by then (issue 54: one kept writing into the project for 40 s after every
   * client was told it stopped). They are stopped as a cancel stops them; what they wrote is sent if it comes back.
   */
  #orphaned(): void {
    this.#orphanTimer = null;
    if (this.#client || this.#stopping || this.#jobs.size === 0) return;
    this.options.log.warn(`runner ${this.options.name}: its server has been gone for most of its grace; stopping its ${this.#jobs.size} command(s)`);
    for (const job of this.#jobs.values()) job.controller.abort();
  }

  /** The credential is refused for good: no reconnecting; whoever started the runner is told (`refused`) and stops it. */
  #giveUp(why: string): void {
    this.#refusedBecause = why;
    this.#refuse(why);
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

  #serverFinished(run: string, path: string): void {
    const job = this.#jobs.get(jobKey(run, path));
    if (!job || job.closedByServer) return;
    job.closedByServer = true;
    for (const sender of job.senders.values()) sender.refuse();
    job.controller.abort();
  }

  async #exec(params: RunnerExecParams): Promise<RunnerExecResult> {
    const key = jobKey(params.run, params.path);
    if (this.#jobs.has(key) || this.#starting.has(key)) return { started: true };
    if (this.#stopping) return { started: false, error: "the runner is stopping" };
    const controller = new AbortController();
    const { run, path } = params;
    let started!: (job: Job | null) => void;
    this.#starting.set(
      key,
      new Promise<Job | null>((resolve) => {
        started = resolve;
      }),
    );
    // Never more at once than its capacity: a command the server sent while one it cancelled is still being killed
    // (the server counts it ended at the cancel) waits for that one to go.
    await this.#slot();
    this.options.onCommand?.({ kind: "started", run, path, command: params.command });
    let execution: Awaited<ReturnType<Backend["start"]>>;
    try {
      execution = await this.options.backend.start(execSpec(params, this.options, controller.signal));
    } catch (error) {
      this.#starting.delete(key);
      this.#freeSlot();
      started(null);
      const message = error instanceof Error ? error.message : String(error);
      this.options.onCommand?.({ kind: "ended", run, path, outcome: `failed to start: ${message}`, durationMs: 0 });
      await this.#reliably("stream/aborted", { run: params.run, path: params.path, reason: `failed to start: ${message}`, duration: 0 }).catch(() => undefined);
      this.#wakeIdle();
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
            ...(this.options.chunkRetry?.attempts !== undefined ? { retryAttempts: this.options.chunkRetry.attempts } : {}),
            ...(this.options.chunkRetry?.delayMs ? { retryDelay: this.options.chunkRetry.delayMs } : {}),
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
    job.done = this.#pump(job, execution.stdout, execution.stderr, execution.result).finally(() => {
      this.#jobs.delete(key);
      this.#freeSlot();
      this.#wakeIdle();
    });
    // Output is already being read, so waiting for the remote pid cannot block the process.
    return { started: true, target: await execution.located };
  }

  /** Takes one of the runner's capacity's slots (held until the command has ended or failed to start), in turn. */
  async #slot(): Promise<void> {
    const capacity = this.options.capacity;
    if (capacity === undefined) return;
    if (this.#held < capacity) {
      this.#held++;
      return;
    }
    await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
  }

  #freeSlot(): void {
    if (this.options.capacity === undefined) return;
    const next = this.#slotWaiters.shift();
    // Handed on as it is: the slot stays held, by the next command.
    if (next) next();
    else this.#held--;
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
    // Network mode allowlist: what the command reached and was refused goes with its end, for the log entry and the audit trail.
    const egress = outcome.egress ? { egress: { allowed: outcome.egress.allowed.slice(0, 64), blocked: outcome.egress.blocked.slice(0, 64) } } : {};
    const finish = () =>
      outcome.timedOut
        ? this.#reliably("stream/aborted", { run, path, reason: `timed out after ${job.params.timeoutMs} ms`, duration, ...egress })
        : // A channel given up lost output, even when the process had exited before: never "completed".
          outcome.cancelled || [...job.senders.values()].some((sender) => sender.refused)
          ? this.#reliably("stream/aborted", { run, path, reason: job.stoppedBecause ?? "cancelled by the runner", duration, ...egress })
          : this.#reliably("stream/completed", { run, path, exit_code: outcome.exitCode, signal: outcome.signal, duration, ...egress });
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

/**
 * How long after losing its server a runner stops its commands: before the server's grace ends (then it reports
 * them aborted), leaving time for the kill's own grace (TERM, then KILL) — 5 s, or half of a grace under 10 s.
 */
export function stopBeforeServer(graceMs: number): number {
  return graceMs >= 10_000 ? graceMs - 5_000 : Math.floor(graceMs / 2);
}
