import type { z } from "zod";
import type { BackendName } from "../../protocol/backends.js";
import type { Role } from "../../protocol/roles.js";
import { type ContainerInfo, noSandbox, type RunnerAttachParams, type SandboxInfo, sandboxModes } from "../../protocol/runner.js";
import type { SandboxModeName } from "../../protocol/sandbox.js";
import type { RunnerClaim } from "../../protocol/views.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import { conflict, SpoolError } from "../../rpc/errors.js";
import type { EmbeddedRunnerHost } from "../../runners/local/embedded-host.js";
import { newResumeToken, tokenKey, tokenMatches } from "../producers/resume-tokens.js";

export interface AttachedRunner {
  name: string;
  backend: BackendName;
  description: string | null;
  labels: Record<string, string>;
  default: boolean;
  embedded: boolean;
  attachedAt: number;
  connection: ConnectionHandle;
  projectId: number;
  /** The key of the runner's resume token; stored on every producer dispatched to it. */
  tokenKey: string;
  /** Where it runs read-only work, as it said at attach; a runner that said nothing has none. */
  sandbox: SandboxInfo;
  /** What holds its commands' processes, as it said at attach (undefined: it did not say). */
  container?: ContainerInfo;
  /** The principal whose credential attached it, and that credential's role then. */
  attachedBy: { name: string; role: Role };
  /** The machine it runs commands on, as it said at attach (null: it did not say). */
  host: string | null;
  /** Where it runs the project root's commands, as it said at attach (null: at the root's own path). */
  root: string | null;
  /** The project it serves. */
  project: ProjectRef;
  /** Commands it runs at once, as it said at attach; null: no limit. */
  capacity: number | null;
  /** spool runners drain: it takes nothing new (held with its name, across its reconnects). */
  draining: boolean;
  /** Slots held for commands on their way to it (an accept or a take between its choice and its owner's record). */
  reserved: number;
  /** Its starts that failed in a row (runner/exec answered "not started", or not at all); 0 again at one that started. */
  failedStarts: number;
  /** Until when (Date.now()) it takes no queued command and no pool chooses it, after failed starts (0: it does). */
  restingUntil: number;
}

/**
 * What a proposal records of the runner it goes to (the `runnerClaim` fact): the embedded runner's sandbox is the
 * server's own; anything a remote runner says of its sandbox and network is its claim, shown with who attached it.
 */
export function runnerClaim(runner: {
  embedded: boolean;
  attachedBy: { name: string; role: Role } | null;
  sandbox: SandboxInfo;
  root?: string | null;
}): RunnerClaim {
  return {
    own: runner.embedded,
    attachedBy: runner.embedded ? null : (runner.attachedBy?.name ?? null),
    attachedAs: runner.embedded ? null : (runner.attachedBy?.role ?? null),
    modes: sandboxModes(runner.sandbox),
    network: runner.sandbox.network ?? null,
    ...(runner.root ? { root: runner.root } : {}),
  };
}

export const UNREPORTED_SANDBOX = "the runner did not report a read-only sandbox";

type AttachParams = z.output<typeof RunnerAttachParams>;

/**
 * Runners attached to each project, by name. One at most is the project's
 * default. A runner that went away keeps its name reserved for the grace
 * period: only a re-attach with its resume token may take it (and its
 * producers) back.
 */
export class RunnerRegistry {
  readonly #projects = new Map<number, Map<string, AttachedRunner>>();
  readonly #byConnection = new Map<ConnectionHandle, AttachedRunner>();
  readonly #reserved = new Map<string, { tokenKey: string; timer: NodeJS.Timeout; runner: AttachedRunner; until: number }>();
  #embedded: EmbeddedRunnerHost | null = null;

  /** Installs the embedded runner (at start-up, when the server runs one). */
  setEmbedded(host: EmbeddedRunnerHost): void {
    this.#embedded = host;
  }

  get embeddedName(): string | null {
    return this.#embedded?.name ?? null;
  }

  /** The embedded runner's sandbox, whether or not it has started; null when the server runs none. */
  embeddedSandbox(): Promise<SandboxInfo> | null {
    return this.#embedded?.sandbox() ?? null;
  }

  #of(projectId: number): Map<string, AttachedRunner> {
    let map = this.#projects.get(projectId);
    if (!map) this.#projects.set(projectId, (map = new Map()));
    return map;
  }

  runnerOf(connection: ConnectionHandle): AttachedRunner | undefined {
    return this.#byConnection.get(connection);
  }

  get(projectId: number, name: string): AttachedRunner | undefined {
    return this.#of(projectId).get(name);
  }

  /** Every runner attached to this server, of every project (the server's metrics). */
  attached(): IterableIterator<AttachedRunner> {
    return this.#byConnection.values();
  }

  list(projectId: number): AttachedRunner[] {
    return [...this.#of(projectId).values()];
  }

  /** Runners that went away and whose names are held for them until `until` (ms since the epoch). */
  held(projectId: number): { runner: AttachedRunner; until: number }[] {
    return [...this.#reserved.values()].filter((r) => r.runner.projectId === projectId).map(({ runner, until }) => ({ runner, until }));
  }

  /**
   * Checks an attach and returns the token the runner will hold; throws
   * CONFLICT (name taken or reserved, a second default) or NOT_OWNER (a
   * reserved name without its token). Changes nothing.
   */
  check(connection: ConnectionHandle, project: ProjectRef, params: AttachParams): void {
    if (this.#byConnection.has(connection)) throw conflict("This connection is already attached as a runner");
    const embedded = this.#embedded?.owns(connection) ?? false;
    if (this.#embedded && params.name === this.#embedded.name && !embedded) {
      throw conflict(`"${params.name}" is the embedded runner's name; pick another`, { name: params.name });
    }
    const holder = this.#of(project.id).get(params.name);
    if (holder && !tokenMatches(params.resumeToken, holder.tokenKey)) {
      throw conflict(`Runner "${params.name}" is already attached to project "${project.name}"`, { name: params.name });
    }
    const reserved = this.#reserved.get(reservationKey(project.id, params.name));
    if (reserved && !tokenMatches(params.resumeToken, reserved.tokenKey)) {
      throw new SpoolError(
        "NOT_OWNER",
        `Runner name "${params.name}" is held for the runner that disconnected while it had work; only that runner (with its resume token) can take it until the grace period ends`,
        { name: params.name },
      );
    }
    if (params.default && !params.replaceDefault) {
      const current = this.list(project.id).find((r) => r.default && r.name !== params.name);
      if (current) {
        throw conflict(`Runner "${current.name}" is already the default runner of project "${project.name}"; attach with replaceDefault to take over`, {
          default: current.name,
        });
      }
    }
  }

  /** Attaches (after `check`): returns the runner and its resume token. A live holder with the same token is replaced. */
  attach(connection: ConnectionHandle, project: ProjectRef, params: AttachParams): { runner: AttachedRunner; token: string; replaced: AttachedRunner | null } {
    this.check(connection, project, params);
    const runners = this.#of(project.id);
    const replaced = runners.get(params.name) ?? null;
    if (replaced) this.#byConnection.delete(replaced.connection);
    const key = reservationKey(project.id, params.name);
    const held = this.#reserved.get(key)?.runner ?? null;
    clearTimeout(this.#reserved.get(key)?.timer);
    this.#reserved.delete(key);
    if (params.default) for (const other of runners.values()) other.default = false;
    const token = params.resumeToken ?? newResumeToken();
    const runner: AttachedRunner = {
      name: params.name,
      backend: params.backend,
      description: params.description ?? null,
      labels: params.labels ?? {},
      default: params.default ?? false,
      embedded: this.#embedded?.owns(connection) ?? false,
      attachedAt: Date.now(),
      connection,
      projectId: project.id,
      tokenKey: tokenKey(token),
      sandbox: params.sandbox ?? noSandbox(UNREPORTED_SANDBOX),
      ...(params.container ? { container: params.container } : {}),
      attachedBy: { name: connection.principal.name, role: connection.principal.role },
      host: params.host ?? null,
      root: params.root ?? null,
      project,
      capacity: params.capacity ?? null,
      // A re-attach of the same runner (its token) keeps its drain; attach.ts reads the one held with its name.
      draining: replaced?.draining ?? held?.draining ?? false,
      reserved: 0,
      // A runner attached again (restarted, repaired) starts with a clean record.
      failedStarts: 0,
      restingUntil: 0,
    };
    runners.set(params.name, runner);
    this.#byConnection.set(connection, runner);
    return { runner, token, replaced };
  }

  /** The runner's connection closed: it is no longer attached. `reserveMs` keeps its name for its own re-attach. */
  detach(connection: ConnectionHandle, reserveMs: number): AttachedRunner | undefined {
    const runner = this.#byConnection.get(connection);
    if (!runner) return undefined;
    this.#byConnection.delete(connection);
    const runners = this.#of(runner.projectId);
    if (runners.get(runner.name) === runner) runners.delete(runner.name);
    if (reserveMs > 0) {
      const key = reservationKey(runner.projectId, runner.name);
      clearTimeout(this.#reserved.get(key)?.timer);
      const timer = setTimeout(() => this.#reserved.delete(key), reserveMs);
      timer.unref();
      this.#reserved.set(key, { tokenKey: runner.tokenKey, timer, runner, until: Date.now() + reserveMs });
    }
    return runner;
  }

  /**
   * Who executes an accepted proposal: "self", the named runner, the
   * project's default, or the embedded runner (started when first needed).
   * Throws NO_RUNNER when there is none, and for read-only work when the
   * chosen runner has no read-only sandbox, and for runner "self" on anything not proposed in mode full ("self"
   * streams it itself, outside the server's control, with no sandbox): a command shown as sandboxed never runs
   * without one.
   */
  async select(
    project: ProjectRef,
    requested: string | undefined,
    options: { readOnly?: boolean; mode?: SandboxModeName; egress?: boolean } = {},
  ): Promise<"self" | AttachedRunner> {
    const runner = await this.#choose(project, requested);
    if (runner !== "self") refuseSandbox(runner, options);
    else {
      // Unsaid, the mode is the narrowest the work could need.
      const mode = options.readOnly ? "read-only" : (options.mode ?? "read-only");
      if (mode !== "full") refuseSelf(mode, await this.#giving(project.id, mode));
    }
    return runner;
  }

  /** The names of the runners an accept here can pick that run commands in `mode`, sorted. */
  async #giving(projectId: number, mode: SandboxModeName): Promise<string[]> {
    const names = new Set<string>();
    for (const r of this.list(projectId)) if (sandboxModes(r.sandbox).includes(mode)) names.add(r.name);
    if (this.#embedded && sandboxModes(await this.#embedded.sandbox()).includes(mode)) names.add(this.#embedded.name);
    return [...names].sort();
  }

  /**
   * The runner a proposal names, as an accept here would find it (attached, or the embedded one, which is
   * not started for this), with its sandbox; undefined when neither. Another project's runner is not found.
   */
  async named(projectId: number, name: string): Promise<{ name: string; sandbox: SandboxInfo; claim: RunnerClaim } | undefined> {
    const attached = this.get(projectId, name);
    if (attached) return { name, sandbox: attached.sandbox, claim: runnerClaim(attached) };
    if (this.#embedded && name === this.#embedded.name) {
      const sandbox = await this.#embedded.sandbox();
      return { name, sandbox, claim: runnerClaim({ embedded: true, attachedBy: null, sandbox }) };
    }
    return undefined;
  }

  /** The names an accept here can pick: the attached runners and the embedded one, sorted. */
  names(projectId: number): string[] {
    const names = new Set(this.list(projectId).map((r) => r.name));
    if (this.#embedded) names.add(this.#embedded.name);
    return [...names].sort();
  }

  /**
   * The runner a plain accept (naming none) would pick here, and its sandbox: the project's default
   * runner, else the embedded one; null when there is neither on this server.
   */
  async defaultSandbox(projectId: number): Promise<{ name: string; sandbox: SandboxInfo } | null> {
    const fallback = this.list(projectId).find((r) => r.default);
    if (fallback) return { name: fallback.name, sandbox: fallback.sandbox };
    if (this.#embedded) return { name: this.#embedded.name, sandbox: await this.#embedded.sandbox() };
    return null;
  }

  async #choose(project: ProjectRef, requested: string | undefined): Promise<"self" | AttachedRunner> {
    if (requested === "self") return "self";
    const embedded = this.#embedded;
    const useEmbedded = async () => {
      await embedded!.ensure(project);
      const runner = this.get(project.id, embedded!.name);
      if (!runner) throw new SpoolError("NO_RUNNER", `The embedded runner "${embedded!.name}" did not attach`);
      return runner;
    };
    if (requested !== undefined) {
      const named = this.get(project.id, requested);
      if (named) return named;
      if (embedded && requested === embedded.name) return useEmbedded();
      throw new SpoolError(
        "NO_RUNNER",
        `No runner named "${requested}" is attached to project "${project.name}"; accept with runner "self" to stream the output yourself`,
        {
          runner: requested,
        },
      );
    }
    const fallback = this.list(project.id).find((r) => r.default);
    if (fallback) return fallback;
    if (embedded) return useEmbedded();
    throw new SpoolError("NO_RUNNER", 'No runner can execute this proposal: attach one, or accept with runner "self" to stream the output yourself');
  }

  async stop(): Promise<void> {
    for (const { timer } of this.#reserved.values()) clearTimeout(timer);
    this.#reserved.clear();
    await this.#embedded?.stopAll();
  }
}

/**
 * Throws NO_RUNNER when the runner cannot run work in the mode it was proposed in: workspace-write without
 * that sandbox, or read-only work without a read-only sandbox (it is never run unprotected).
 */
export function refuseSandbox(runner: { name: string; sandbox: SandboxInfo }, options: { readOnly?: boolean; mode?: SandboxModeName; egress?: boolean }): void {
  if (options.egress && !runner.sandbox.egress) throw noEgress(runner);
  if (options.mode === "workspace-write" && !sandboxModes(runner.sandbox).includes("workspace-write")) {
    throw new SpoolError(
      "NO_RUNNER",
      `Runner "${runner.name}" cannot run this command in the workspace-write sandbox it was proposed in (${runner.sandbox.detail}); accept it on a runner whose runner/list entry lists workspace-write in sandbox.modes, or propose it again with sandbox "full" (or set "sandbox": "full" in config.json) to run it without a sandbox`,
      { runner: runner.name, sandbox: "workspace-write", modes: sandboxModes(runner.sandbox) },
    );
  }
  if (options.readOnly && !runner.sandbox.readOnly) {
    throw new SpoolError(
      "NO_RUNNER",
      `Runner "${runner.name}" has no read-only sandbox (${runner.sandbox.detail}), so it refuses read-only work (the env tool, ask runs); pick a runner whose runner/list entry shows sandbox.readOnly, or install bubblewrap on its machine`,
      { runner: runner.name, readOnly: true, sandbox: runner.sandbox },
    );
  }
}

/**
 * Throws NO_RUNNER for runner "self" on a command proposed in any mode but full: the person decided on a
 * command shown as sandboxed, and "self" streams it from the accepting client with no sandbox. Names the
 * runners that give the mode shown (`giving`). SPEC §7 "Sandbox modes", Accept.
 */
export function refuseSelf(mode: Exclude<SandboxModeName, "full">, giving: readonly string[]): never {
  const where =
    giving.length > 0 ? `accept it on ${giving.map((n) => `"${n}"`).join(", ")}` : `no runner attached to the project gives ${mode}; attach one that does`;
  throw new SpoolError(
    "NO_RUNNER",
    `This command was proposed to run in the ${mode} sandbox, and runner "self" runs it with no sandbox (the accepting client streams it itself); ${where}, or propose it again with sandbox "full"`,
    { runner: "self", sandbox: mode, runners: giving },
  );
}

const reservationKey = (projectId: number, name: string) => `${projectId}\u0000${name}`;

/** UNSUPPORTED for a command in network mode allowlist on a runner that cannot enforce the list: it never runs there unrestricted. */
export const noEgress = (runner: { name: string; sandbox: SandboxInfo }) =>
  new SpoolError(
    "UNSUPPORTED",
    `Runner "${runner.name}" cannot enforce a network allowlist (${runner.sandbox.detail}); the command is not run there without one: accept it on a runner whose runner/list entry shows sandbox.egress (the local bubblewrap runner; a Docker runner with fresh containers, started as root on the engine's machine), or propose it without allow_hosts on a project without an egress list`,
    { runner: runner.name, network: "allowlist" },
  );
