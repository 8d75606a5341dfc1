import { randomBytes } from "node:crypto";
import { constants, lstatSync, realpathSync } from "node:fs";
import { access, stat } from "node:fs/promises";
import { join } from "node:path";
import { recordedStateSoon } from "../../home/registry.js";
import { ViewRecord } from "../../home/views.js";
import { type Backend, BackendUnavailable, type ExecResult, type ExecSpec, type Execution, firstLine, StartError } from "../backend.js";
import { TTY_TERM } from "../control.js";
import { localBaseEnvironment } from "../environment.js";
import { type NewRepos, reposFrom, untrustingNewRepositories } from "../new-repos.js";
import { OutputPipe } from "../output.js";
import { type EgressDir, egressDir, egressLauncher, egressVariables } from "../sandbox/egress.js";
import { type CopiedDir, systemCopies } from "../sandbox/etc-view.js";
import { gitReader } from "../sandbox/git-config.js";
import { networkLauncher } from "../sandbox/network.js";
import {
  bwrapArgs,
  launcher,
  noSandbox,
  once,
  pidNamespaceArgs,
  probeBwrap,
  SANDBOX_OFF,
  SANDBOX_SIGNALS,
  type SandboxInfo,
  type SandboxMode,
  type SandboxProbe,
  sandboxOf,
  sandboxResult,
  within,
} from "../sandbox/sandbox.js";
import { seccompFor } from "../sandbox/seccomp.js";
import { SETUP_FD, SetupFailed, type SetupMarker, setupFailed } from "../sandbox/setup.js";
import {
  codeRefusal,
  expandHome,
  inSystem,
  localHomes,
  loginHomes,
  pathIdentity,
  privateHome,
  realOrPlanned,
  runnerHomes,
  statProgram,
  viewRefusal,
  viewRefusalMessage,
} from "../sandbox/view.js";
import { configuredPathsProblem, cwdOutsideMessage, protectedIn, rootMovedMessage, UNPROTECTED } from "../sandbox/workspace.js";
import { shellScript } from "../shell.js";
import { supervise, withManyListeners } from "../supervise.js";
import { type CommandCgroup, type ContainerChoice, type ContainerInfo, containment } from "./container.js";
import { containedEnd, type ProcessRecorder } from "./orphans.js";
import { inputControl, type PipedChild, signalGroup, spawnPiped } from "./piped.js";
import { TakenSignals } from "./taken-signals.js";
import { startLocalTty } from "./tty.js";

export interface LocalBackendOptions {
  /** Directory for commands that name none (the project root, for the embedded runner). */
  defaultCwd?: string;
  killGraceMs?: number;
  /** How long the output may stay quiet after the command exited before a leftover grandchild's pipe is let go. */
  quietMs?: number;
  /** Read-only sandbox: `auto` (bubblewrap when it works here, default), `off` (none: read-only work is refused). */
  sandbox?: Exclude<SandboxMode, "require">;
  /** The bubblewrap program (default `bwrap`, looked up once in the runner's own PATH, never a command's). */
  bwrap?: string;
  /** The runner's environment, where the base variables (PATH, HOME, LANG, TERM) come from; default process.env. Nothing else of it reaches a command. */
  environ?: NodeJS.ProcessEnv;
  /** Where Spool's own code lies (view.ts spoolCode), for a test; default: this installation's. */
  spoolCode?: readonly string[];
  /** The password file whose users' homes (those who log in) no sandboxed command's project root may be or hold; default /etc/passwd. */
  passwd?: string;
  /** Told of each process group started and of its leader's exit, so a runner that dies unannounced can have its leftovers killed (orphans.ts). */
  processes?: ProcessRecorder;
  /** What holds each command's processes (container.ts): `auto` (default) a cgroup where this process may make one, else a PID namespace. */
  container?: ContainerChoice;
  /**
   * The sandbox probe's answer, shared: the embedded runners' backends (one a project) and the facts shown of them
   * take one probe, so what a person is shown (sandbox, network) is what the command gets. Else each backend probes once.
   */
  probe?: () => Promise<SandboxProbe>;
  /** Names the egress proxy of an `allowlist` command resolves to these addresses before asking DNS (its hosts file). */
  egressHosts?: Readonly<Record<string, string>>;
}

/** bwrap's arguments; a plan it cannot build is a StartError. */
function sandboxArgs(plan: Parameters<typeof bwrapArgs>[0]): string[] {
  try {
    return bwrapArgs(plan);
  } catch (error) {
    throw new StartError(`Cannot start the command: ${firstLine(error)}`);
  }
}

/** What `LocalBackend#run` starts: the program and arguments (a sandbox's launcher, or `/bin/sh -c`), and the command. */
interface LocalStart {
  file: string;
  args: string[];
  env: Record<string, string>;
  base: Record<string, string>;
  cwd: string;
  script: string;
  /** How a sandbox says it is set up (runners/sandbox/setup.ts); null: no sandbox. */
  setup: SetupMarker | null;
  started: number;
  /** A sandboxed command's view, recorded while it runs (home/views.ts): its process is added once started. */
  view?: ViewRecord;
}

/** The program as its container wraps it, the cgroup holding it, and whether a PID namespace of its own holds it. */
interface Contained {
  file: string;
  args: string[];
  env: Record<string, string>;
  cgroup: CommandCgroup | undefined;
  contained: boolean;
}

/** A command without a sandbox in a workspace: its directory must be in the project root, judged by where both lead now. */
function checkCwdInWorkspace(cwd: string, root: string): void {
  // full too: a directory swapped for a link after the proposal (to $HOME, say) is judged by where it leads now, as the sandbox's is.
  let realCwd: string;
  let workspace: string;
  try {
    [realCwd, workspace] = [realpathSync(cwd), realpathSync(root)];
  } catch (error) {
    throw new StartError(`Cannot start the command: its directory ${cwd} or the project root is not there (${firstLine(error)})`);
  }
  const moved = rootMovedMessage(root, workspace);
  if (moved) throw new StartError(`Cannot start the command: ${moved}`);
  if (!within(realCwd, workspace)) throw new StartError(cwdOutsideMessage(realCwd, workspace));
}

/**
 * Runs commands as local processes through execa. Each command leads its own
 * process group, so cancelling reaches everything it started: TERM to the
 * group, KILL after the grace. stdin, stdout and stderr are pumped at once
 * (no pipe deadlock), and a background grandchild holding the pipes open
 * does not keep the command from completing.
 */
export class LocalBackend implements Backend {
  readonly kind = "local" as const;
  /** Aborted by close(); every running execution listens to it, so it may have many listeners. */
  readonly #closing = withManyListeners(new AbortController());

  /** What the sandbox gives and bwrap's absolute path (null: no sandbox), probed once. */
  readonly #sandbox = once(
    (): Promise<SandboxProbe> =>
      this.options.probe?.() ??
      (this.options.sandbox === "off"
        ? Promise.resolve({ info: noSandbox(SANDBOX_OFF), path: null })
        : probeBwrap(this.options.bwrap ?? "bwrap", this.#environ)),
  );

  constructor(private readonly options: LocalBackendOptions = {}) {}

  get #environ(): NodeJS.ProcessEnv {
    return this.options.environ ?? process.env;
  }

  /** The runner user's home directories, as real paths: the account's and $HOME where it names another. */
  #homes(): string[] {
    return runnerHomes(this.#environ.HOME);
  }

  async sandbox(): Promise<SandboxInfo> {
    return (await this.#sandbox()).info;
  }

  /** What holds each command's processes here: a cgroup, a PID namespace, or nothing (and why). */
  async container(): Promise<ContainerInfo> {
    return (await containment(this.#environ, this.options.container)).info;
  }

  describe(): string {
    return `local processes on this machine${this.options.defaultCwd ? `, default cwd ${this.options.defaultCwd}` : ""}`;
  }

  async check(): Promise<void> {
    try {
      await access("/bin/sh", constants.X_OK);
    } catch (error) {
      throw new BackendUnavailable(`local: cannot run /bin/sh (${firstLine(error)}) — commands run with /bin/sh -c`);
    }
    const cwd = this.options.defaultCwd;
    if (cwd && !(await stat(cwd).catch(() => null))?.isDirectory()) {
      throw new BackendUnavailable(`local: ${cwd} is not a directory — create it, or name another project root with --root DIR`);
    }
  }

  async start(spec: ExecSpec): Promise<Execution> {
    const started = Date.now();
    const cwd = spec.cwd ?? this.options.defaultCwd ?? process.cwd();
    // A clean environment: the base and what the runner was given (allowed names, the proposal's env); never the runner's own.
    // Under a terminal, TERM names one that can do what a terminal does (the proposal's env may name another).
    const base = { ...localBaseEnvironment(this.#environ), ...(spec.tty ? { TERM: TTY_TERM } : {}) };
    const env: Record<string, string> = { ...base, ...spec.env };
    // The last simple command takes the shell's place where that changes nothing else (shell.ts): no shell dies of a ^C its program handled.
    const script = shellScript(spec.command);
    const sandbox = sandboxOf(spec);
    if (!sandbox) return this.#run(spec, { file: "/bin/sh", args: ["-c", script], env, base, cwd, script, setup: null, started });
    // What it sees, recorded while it runs (home/views.ts): released when it has ended, or not started.
    const view = new ViewRecord(this.#environ);
    const launch = await this.#sandboxed(spec, sandbox, { cwd, env, base, script }, view).catch((error: unknown) => {
      view.release();
      throw error;
    });
    try {
      const execution = untrustingNewRepositories(await this.#run(spec, { ...launch, base, cwd, script, started, view }), launch.repos);
      const dir = launch.egress;
      if (!dir) return { ...execution, result: execution.result.finally(view.release) };
      // What the proxy allowed and refused (its summary, written when it stopped), for the record; then its directory goes.
      const result = execution.result
        .then((ended) => ({ ...ended, egress: dir.summary() }))
        .finally(() => {
          view.release();
          dir.remove();
        });
      return { ...execution, result };
    } catch (error) {
      view.release();
      launch.egress?.remove();
      if (error instanceof SetupFailed) throw new StartError(`Cannot start the command: ${error.message}`);
      throw error;
    }
  }

  /**
   * What a sandboxed command sees (runners/sandbox/view.ts), as real paths, checked: nothing that holds a known secret (the
   * server's and the runner's state, the homes the registry records), no configured path that is or holds a home or
   * what a login runs. Throws StartError naming what it refuses.
   */
  async #view(
    sandbox: NonNullable<ReturnType<typeof sandboxOf>>,
    probed: SandboxProbe,
    workspace: string,
    home: string,
    record: ViewRecord,
  ): Promise<{ home: string | null; readOnly: string[]; writable: string[]; copies: CopiedDir[] }> {
    const refuse = (why: string): never => {
      throw new StartError(`Cannot start the command: ${why}`);
    };
    const given = sandbox.view;
    const toolchains = given?.toolchains ?? probed.info.view?.toolchains ?? [];
    const real = (paths: readonly string[]) => [...new Set(paths.map((path) => realOrPlanned(expandHome(path, home))))];
    const readOnly = real([...toolchains, ...(given?.read ?? [])]);
    const writable = real(given?.write ?? []);
    const homes = [...new Set([...this.#homes(), ...localHomes(home)])];
    // A configured path that is a home or holds one would show all of it; a writable one holding what a login runs, plant it.
    const problem = configuredPathsProblem(readOnly, writable, homes);
    if (problem) refuse(problem);
    const roots = [workspace, ...readOnly, ...writable];
    // Before the registry is read: a server starting meanwhile with its home in this view sees the record and refuses,
    // or recorded its home first and this start refuses (home/views.ts).
    record.record(roots);
    // Known secrets are checks, never mounts: the server's and this runner's state, and every path the registry records
    // (read by a pass begun after this start asked, shared with the starts asking with it: home/registry.ts).
    const recorded = await recordedStateSoon(this.#environ);
    // A turn of the event loop first: what changed in /etc or /usr/local/etc before this start has its watch's event
    // read, so the copy has it (the awaits above may all be answered already, and a start then sees them as they were
    // a moment ago).
    await new Promise((resolve) => setImmediate(resolve));
    const copies = systemCopies();
    const secrets = [...new Set([...(sandbox.secrets ?? []).map(realOrPlanned), ...recorded.files, ...recorded.dirs])];
    const refusal =
      viewRefusal(roots, secrets) ??
      // In the system: /etc and /usr/local/etc as their copies hold them (what every user may read), the rest as it is.
      secrets
        .filter((secret) => {
          if (!inSystem(secret)) return false;
          const copied = copies.find(({ path }) => within(secret, path));
          return !copied || lstatSync(join(copied.copy, secret.slice(copied.path.length)), { throwIfNoEntry: false }) !== undefined;
        })
        .map((secret) => ({ secret, root: "the system directories" }))[0] ??
      null;
    if (refusal) refuse(viewRefusalMessage(refusal));
    // Read-only binds the configured write paths read-only too (sandbox.ts): only workspace-write can write them.
    const code = sandbox.mode === "workspace-write" ? codeRefusal([workspace, ...writable], this.options.spoolCode) : null;
    if (code) refuse(code);
    return { home: probed.info.view?.home ?? privateHome(home), readOnly, writable, copies };
  }

  /** bwrap's launch for a sandboxed command: its program, arguments and environment, its egress proxy's directory. */
  async #sandboxed(
    spec: ExecSpec,
    sandbox: NonNullable<ReturnType<typeof sandboxOf>>,
    start: { cwd: string; env: Record<string, string>; base: Record<string, string>; script: string },
    record: ViewRecord,
  ): Promise<{ file: string; args: string[]; env: Record<string, string>; egress: EgressDir | null; setup: SetupMarker; repos: NewRepos | null }> {
    const { cwd, base, script } = start;
    let env = start.env;
    const probed = await this.#sandbox();
    if (!probed.path) throw new StartError(`${sandbox.mode} commands are refused on this runner: it has no ${sandbox.mode} sandbox (${probed.info.detail})`);
    const real = (what: string, path: string) => {
      try {
        return realpathSync(path);
      } catch (error) {
        throw new StartError(`Cannot start the command: ${what} ${path} is not there (${firstLine(error)})`);
      }
    };
    // Resolved now, at the start: a directory swapped for a symbolic link after the proposal is judged by where it leads today.
    // No project root (a cwd the server allowed outside it): the command's directory is its workspace.
    const realCwd = real("cwd", cwd);
    const workspace = spec.workspace ? real("the project root", spec.workspace) : realCwd;
    const moved = spec.workspace ? rootMovedMessage(spec.workspace, workspace) : null;
    if (moved) throw new StartError(`Cannot start the command: ${moved}`);
    const checked = await this.#view(sandbox, probed, workspace, base.HOME!, record);
    // What is bound is what was judged: each path's identity now, which the sandbox's first program compares with what
    // bubblewrap mounted (a path swapped for a link between the two, by a command of an enclosing project, is refused).
    const stat = statProgram();
    if (!stat) throw new StartError("Cannot start the command: there is no stat(1) in /usr/bin or /bin, with which the sandbox checks what it mounted");
    const present = (paths: readonly string[]) =>
      paths.flatMap((path) => {
        let id: string | null;
        try {
          id = pathIdentity(path);
        } catch (error) {
          throw new StartError(`Cannot start the command: ${firstLine(error)}`);
        }
        return id === null ? [] : [{ path, id }];
      });
    const root = present([workspace]);
    if (!root.length) throw new StartError(`Cannot start the command: the project root ${workspace} is not there`);
    const [readOnly, writable] = [present(checked.readOnly), present(checked.writable)];
    // A login's files and git's directories, where the project has them: read-only inside a writable workspace.
    const inside = sandbox.mode === "workspace-write" ? await protectedIn(workspace, gitReader(base.HOME, this.#environ)) : UNPROTECTED;
    if (typeof inside === "string") throw new StartError(`Cannot start the command: ${inside}`);
    const protect = present(inside.paths);
    // The repositories it could write, looked for once it has ended (new-repos.ts); what was bound is kept.
    const repos = sandbox.mode === "workspace-write" ? reposFrom(workspace, protect, inside) : null;
    const view = { ...checked, readOnly: readOnly.map((p) => p.path), writable: writable.map((p) => p.path) };
    // bwrap by its absolute path with the base environment only (the command's is set inside). With the network, workspace-write gets a namespace
    // of its own where slirp4netns is there (sandbox/network.ts); mode allowlist: a loopback only, and the egress proxy beside it (sandbox/egress.ts).
    const allowlist = sandbox.mode === "workspace-write" && sandbox.egress ? sandbox.egress : null;
    const ownNetwork = !allowlist && sandbox.mode === "workspace-write" && (sandbox.network ?? true) && Boolean(probed.slirp);
    const egress = allowlist ? egressDir() : null;
    if (egress) env = { ...env, ...egressVariables() };
    // The sandbox says it is set up before the command runs (runners/sandbox/setup.ts): under a terminal in its first output.
    const setup: SetupMarker = spec.tty ? { nonce: randomBytes(12).toString("hex") } : { fd: SETUP_FD };
    const sandboxed = sandboxArgs({
      mode: sandbox.mode,
      network: sandbox.network ?? true,
      ownNetwork,
      workspace,
      cwd: realCwd,
      homes: this.#homes(),
      userHomes: loginHomes(this.options.passwd),
      protect: protect.map((p) => p.path),
      view,
      bound: { stat, paths: [...root, ...readOnly, ...writable, ...protect] },
      env,
      command: script,
      resetSignals: probed.resetSignals ?? null,
      userns: probed.userns ?? false,
      seccomp: Boolean(probed.seccomp),
      setup,
      ...(egress ? { egress: { dir: egress.path, forwarder: egress.forwarder } } : {}),
    });
    const filter = seccompFor(sandbox.mode, probed.seccomp ?? null);
    const ignore = probed.resetSignals ? SANDBOX_SIGNALS : [];
    if (allowlist && egress) {
      const policy = { allow: allowlist.allow, ...(this.options.egressHosts ? { hosts: this.options.egressHosts } : {}) };
      const launch = egressLauncher(egress, policy, probed.path, sandboxed, ignore, probed.seccomp ?? null);
      return { ...launch, env: { ...base, ...launch.env }, egress, setup, repos };
    }
    if (ownNetwork) {
      const launch = networkLauncher(probed.slirp!, probed.path, sandboxed, ignore, filter);
      return { ...launch, env: { ...base, ...launch.env }, egress, setup, repos };
    }
    return { ...launcher(probed.path, sandboxed, Boolean(probed.resetSignals), filter), env: base, egress, setup, repos };
  }

  async #run(spec: ExecSpec, start: LocalStart): Promise<Execution> {
    const { cwd, started, setup } = start;
    const sandbox = setup !== null;
    if (!sandbox && spec.workspace) checkCwdInWorkspace(cwd, spec.workspace);
    // Its container (SPEC §7 "Stopped means stopped"): a sandbox has a PID namespace already; a full command gets one where no cgroup holds it.
    const { file, args, env, cgroup, contained } = await this.#contain(sandbox, start);
    if (spec.tty) {
      const { killGraceMs, processes } = this.options;
      const nonce = setup && "nonce" in setup ? setup.nonce : undefined;
      const tty = await startLocalTty(
        { ...spec, tty: spec.tty },
        { file, args, cwd, env, killGraceMs, processes, closing: this.#closing.signal, signalGroup, cgroup, contained: sandbox || contained, nonce },
      ).catch(async (error: unknown) => {
        await cgroup?.kill();
        throw error;
      });
      return sandbox || contained ? { ...tty, result: tty.result.then(sandboxResult) } : tty;
    }
    const child = await spawnPiped(spec, { file, args, cwd, env }, setup, cgroup);
    const { subprocess, pid } = child;
    // The view lives while its sandbox does, should that outlive this runner (a launcher's shell above bubblewrap).
    start.view?.add(pid);
    // A contained command's end is told once its namespace is empty (orphans.ts, containedEnd).
    const namespace = sandbox || contained ? containedEnd(pid) : null;
    this.options.processes?.started(pid, spec.command, cgroup?.path);
    // Read from the start (an output nobody reads is let go at the exit), held until the consumer reads.
    const stdout = new OutputPipe(subprocess.stdout!);
    const stderr = new OutputPipe(subprocess.stderr!);
    if (child.setUpDone && !(await child.setUpDone)) {
      await child.exited;
      // What its launcher left (an egress proxy whose sandbox never came), so that nothing holds its stderr.
      signalGroup(pid, "SIGKILL");
      await cgroup?.kill();
      this.options.processes?.exited(pid);
      stdout.output.destroy();
      throw await setupFailed(stderr.output);
    }

    // A cancel's TERM and KILL reach the whole container, daemons that left the process group included.
    const supervision = supervise(
      spec,
      (signal) => {
        cgroup?.signal(signal, pid);
        signalGroup(pid, signal);
      },
      {
        killGraceMs: this.options.killGraceMs,
        closing: this.#closing.signal,
      },
    );
    const result = this.#ended(spec, child, { namespace, cgroup, supervision, stdout, stderr, started, contained: sandbox || contained });
    // A command bubblewrap contains ignores a client's signals until it runs inside: they wait for it (taken-signals.ts).
    const signals = sandbox || contained ? new TakenSignals(pid, signalGroup) : null;
    const control = spec.interactive && !spec.stdin ? inputControl(subprocess.stdin!, pid, signals) : undefined;
    return {
      stdout: stdout.output,
      stderr: stderr.output,
      result,
      describe: () => ({ backend: "local", pid }),
      located: Promise.resolve({ backend: "local", pid }),
      ...(control ? { control } : {}),
    };
  }

  /**
   * What holds the command's processes (container.ts): a full command is wrapped in a PID namespace where no cgroup
   * holds it (`contained`), and in a cgroup where one does.
   */
  async #contain(sandbox: boolean, start: LocalStart): Promise<Contained> {
    let { file, args, env } = start;
    const box = await containment(this.#environ, this.options.container);
    if (!sandbox && box.kind === "pid-namespace") {
      ({ file, args } = launcher(
        box.bwrap,
        pidNamespaceArgs({ env, cwd: start.cwd, command: start.script, resetSignals: box.resetSignals }),
        Boolean(box.resetSignals),
      ));
      env = start.base;
    }
    let cgroup: CommandCgroup | undefined;
    if (box.kind === "cgroup") {
      try {
        cgroup = box.open();
      } catch (error) {
        throw new StartError(`Cannot start the command: cannot create its cgroup (${firstLine(error)})`);
      }
      ({ file, args } = cgroup.wrap(file, args));
    }
    return { file, args, env, cgroup, contained: !sandbox && box.kind === "pid-namespace" };
  }

  /** The command's result once it exited, what it left running ended and its output read to the end. */
  async #ended(
    spec: ExecSpec,
    child: PipedChild,
    held: {
      namespace: ReturnType<typeof containedEnd> | null;
      cgroup: CommandCgroup | undefined;
      supervision: ReturnType<typeof supervise>;
      stdout: OutputPipe;
      stderr: OutputPipe;
      started: number;
      /** In a sandbox or a PID namespace of its own. */
      contained: boolean;
    },
  ): Promise<ExecResult> {
    const { namespace, cgroup, supervision, stdout, stderr, started } = held;
    const { code, signal } = await child.exited;
    // What the command left running ends with it, as in a PID namespace of its own: bwrap exits before its namespace
    // is empty (orphans.ts, containedEnd), so the end is told once it is.
    await namespace?.ended();
    await cgroup?.kill();
    this.options.processes?.exited(child.pid);
    // Input nobody will read any more: let go of the pipe.
    if (spec.interactive) child.subprocess.stdin?.destroy();
    // A pending KILL stays armed after a cancel: it also reaches children that ignored TERM.
    supervision.done({ keepKill: true });
    const quietMs = this.options.quietMs ?? 100;
    await Promise.all([stdout.settle(quietMs), stderr.settle(quietMs)]);
    await child.settled;
    const ended = { exitCode: code, signal, durationMs: Date.now() - started, cancelled: supervision.cancelled, timedOut: supervision.timedOut };
    return held.contained ? sandboxResult(ended) : ended;
  }

  async close(): Promise<void> {
    this.#closing.abort();
  }
}
