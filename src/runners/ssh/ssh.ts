import { finished } from "node:stream/promises";
import type { ContainerInfo, RunnerView, TtySize } from "../../protocol/runner.js";
import { SANDBOX_MODES } from "../../protocol/sandbox.js";
import { type Backend, BackendUnavailable, type ExecResult, type ExecSpec, type Execution, type ExecutionTarget, firstLine, StartError } from "../backend.js";
import { streamControl, TTY_TERM } from "../control.js";
import { withRepositoryLook } from "../new-repos.js";
import type { SandboxInfo, SandboxMode } from "../sandbox/sandbox.js";
import {
  BWRAP_DETAIL,
  bwrapCommand,
  egressUnavailable,
  noSandbox,
  PROBE_COMMAND,
  pidNamespaceArgs,
  SANDBOX_OFF,
  SANDBOX_SIGNALS,
  sandboxOf,
  sandboxResult,
  seccompDetail,
  usernsDetail,
} from "../sandbox/sandbox.js";
import { seccompFor, seccompPrelude, seccompProgram } from "../sandbox/seccomp.js";
import { privateHome, SYSTEM_DIRS, toolchainRoots, within } from "../sandbox/view.js";
import { shellScript } from "../shell.js";
import { PidLine, type RemoteContainer, type RemoteSandbox, remoteScript, shellQuote } from "../streams.js";
import { supervise, withManyListeners } from "../supervise.js";
import { parseBefore, repositoriesAfter, repositoriesBefore } from "./repos.js";
import { type RemoteShell, type SshOptions, ssh2Shell } from "./shell.js";

export { fingerprint, knownHostKeys } from "./host-keys.js";
export { type RemoteChannel, type RemoteShell, type SshOptions, ssh2Shell } from "./shell.js";

/** What the runner found of bubblewrap on the SSH host. */
interface RemoteProbe {
  info: SandboxInfo;
  /** The login's private home there ($HOME, where a sandbox puts an empty one); null: none. */
  home?: string | null;
  bwrap?: string;
  resetSignals?: string;
  /** bwrap there makes a user namespace for the sandbox. */
  userns?: boolean;
  /** bwrap there loads the (x86-64) seccomp filter. */
  seccomp?: boolean;
}

/**
 * Runs commands on a remote host over SSH, reusing one connection. The
 * wrapper reports the remote shell's pid (a process-group leader, since sshd
 * starts each session in its own session), so cancel works twice over: a
 * channel signal, and `kill` of the process group from a second channel for
 * servers that ignore channel signals.
 */
export class SshBackend implements Backend {
  readonly kind = "ssh" as const;
  readonly #shell: RemoteShell;
  /** Aborted by close(); every running execution listens to it, so it may have many listeners. */
  readonly #closing = withManyListeners(new AbortController());

  /** The remote bwrap's path and what it gives: probed once, again only when the host could not be reached. */
  #probe: Promise<RemoteProbe & { unreachable?: boolean }> | null = null;

  #sandbox(): Promise<RemoteProbe> {
    return (this.#probe ??= this.#probeSandbox().then((answer) => {
      if (answer.unreachable) this.#probe = null;
      return answer;
    }));
  }

  constructor(
    private readonly options: SshOptions & {
      killGraceMs?: number;
      shell?: RemoteShell;
      /** Read-only sandbox: `auto` (bubblewrap on the remote host when it works there, default), `off` (none: read-only work is refused). */
      sandbox?: Exclude<SandboxMode, "require">;
      /**
       * The project root every command of this runner runs in (`spool runner --root`; `"login"`: the login directory,
       * its default), checked once: one that is or holds the login's home gives no sandboxed mode (each such command
       * would be refused at its start), so the runner does not claim one. Absent: each command's own `workspace`.
       */
      workspace?: string;
    },
  ) {
    this.#shell = options.shell ?? ssh2Shell(options);
  }

  async sandbox(): Promise<SandboxInfo> {
    return (await this.#sandbox()).info;
  }

  /** The remote PID namespace a full command runs in: probed once, again only when the host could not be reached. */
  #containerProbe: Promise<{ info: ContainerInfo; contain?: RemoteContainer; unreachable?: boolean }> | null = null;

  #container(): Promise<{ info: ContainerInfo; contain?: RemoteContainer }> {
    return (this.#containerProbe ??= this.#probeContainer().then((answer) => {
      if (answer.unreachable) this.#containerProbe = null;
      return answer;
    }));
  }

  async container(): Promise<ContainerInfo> {
    return (await this.#container()).info;
  }

  /**
   * Whether bwrap on the remote host makes a PID namespace for the login user with the whole filesystem bound
   * through (SPEC §7 "Stopped means stopped"). cgroups are not used on an SSH host: without bwrap there, nothing
   * holds a command's processes, and the runner says so.
   */
  async #probeContainer(): Promise<{ info: ContainerInfo; contain?: RemoteContainer; unreachable?: boolean }> {
    const host = `${this.options.username}@${this.options.host}`;
    const none = (why: string): ContainerInfo => ({
      kind: "none",
      diesWithRunner: false,
      detail:
        `no container for commands on ${host} (${why}): a process that leaves the command's process group escapes a cancel, and commands may outlive a runner that is killed`.slice(
          0,
          500,
        ),
    });
    let output: string;
    try {
      output = await this.#runProbe(`env -i "$b" ${pidNamespaceArgs({ env: {}, cwd: "/", command: "true" }).map(shellQuote).join(" ")} 2>&1 && echo "ok=$b"`);
    } catch (error) {
      return { info: none(`could not look for bubblewrap: ${firstLine(error)}`), unreachable: true };
    }
    const lines = output.trim().split("\n");
    if (lines[0] === "missing") return { info: none("bubblewrap is not installed there") };
    const bwrap = lines.find((line) => line.startsWith("ok=/"))?.slice(3);
    if (!bwrap) return { info: none(`bubblewrap cannot make a PID namespace there: ${lines[0] ?? "it failed"}`) };
    const resetSignals = lines.find((line) => line.startsWith("env=/"))?.slice(4);
    return {
      info: {
        kind: "pid-namespace",
        diesWithRunner: true,
        detail: `every command in a PID namespace of its own on ${host} (bubblewrap, --die-with-parent): its processes die with the command, its cancel and the runner's SSH session; cgroups are not used on SSH hosts`,
      },
      contain: { bwrap, ...(resetSignals ? { resetSignals } : {}) },
    };
  }

  /** Spool controls nothing on the remote host but what it runs: read-only work needs bubblewrap there, working for the login user. */
  async #probeSandbox(): Promise<RemoteProbe & { unreachable?: boolean }> {
    if (this.options.sandbox === "off") return { info: noSandbox(SANDBOX_OFF) };
    const host = `${this.options.username}@${this.options.host}`;
    let output: string;
    try {
      // With a user namespace of its own where bwrap can make one there ("ok userns"), else without one; then with the
      // seccomp filter, on an x86-64 host ("seccomp").
      const probe = (userns: boolean, seccomp = false) => `env -i "$b" ${bwrapCommand("/", PROBE_COMMAND, userns, seccomp).map(shellQuote).join(" ")}`;
      const filter = seccompPrelude(seccompProgram("x64")!);
      output = await this.#runProbe(
        'echo "$b"',
        `u=; { ${probe(true)} 2>/dev/null && echo "ok userns" && u=1; } || { ${probe(false)} 2>&1 && echo ok; }`,
        `if [ "$(uname -m)" = x86_64 ] && (${filter}; if [ -n "$u" ]; then ${probe(true, true)}; else ${probe(false, true)}; fi) >/dev/null 2>&1; then echo seccomp; fi`,
      );
    } catch (error) {
      return {
        info: noSandbox(`ssh: could not look for bubblewrap on ${host}: ${error instanceof Error ? error.message : String(error)}`),
        unreachable: true,
      };
    }
    const [path = "", ...lines] = output.trim().split("\n");
    const resetter = lines.at(-1)?.startsWith("env=/") ? lines.pop()!.slice(4) : undefined;
    const seccomp = lines.at(-1) === "seccomp" ? Boolean(lines.pop()) : false;
    const rest = lines;
    if (path === "missing" || !path.startsWith("/")) return { info: noSandbox(`ssh: bubblewrap is not installed on ${host}; read-only work is refused there`) };
    const last = rest.at(-1);
    if (last !== "ok" && last !== "ok userns") {
      return { info: noSandbox(`ssh: bubblewrap on ${host} cannot build the sandbox: ${rest[0] ?? "it failed"}`.slice(0, 480)) };
    }
    const userns = last === "ok userns";
    let view: RunnerView;
    try {
      view = await this.#probeView();
    } catch (error) {
      return {
        info: noSandbox(`ssh: could not look at what a sandbox on ${host} would see: ${error instanceof Error ? error.message : String(error)}`),
        unreachable: true,
      };
    }
    const homeRoot = await this.#homeWorkspace().catch(() => null);
    if (homeRoot) return { info: noSandbox(`ssh: ${homeRoot}`) };
    return {
      info: {
        kind: "bwrap",
        readOnly: true,
        detail: `${BWRAP_DETAIL}; ${usernsDetail(userns)}; ${seccompDetail(seccomp, "none for this host, or bwrap there cannot load one")}, on ${host}`,
        modes: [...SANDBOX_MODES],
        network: "shared",
        view,
      },
      home: view.home,
      bwrap: path,
      userns,
      seccomp,
      ...(resetter ? { resetSignals: resetter } : {}),
    };
  }

  /**
   * Why no sandboxed command could run in this runner's project root (`workspace`), as the command's own check would
   * refuse each at its start (streams.ts): the root is `/`, or is or holds the login's home. Null: it may, or the root
   * is each command's own.
   */
  async #homeWorkspace(): Promise<string | null> {
    const root = this.options.workspace;
    if (root === undefined) return null;
    const output = await this.#output(
      `printf '%s\\n' "$(cd -P -- ${root === "login" ? '"$PWD"' : shellQuote(root)} 2>/dev/null && pwd)" "$(cd -P -- "$HOME" 2>/dev/null && pwd)"`,
    );
    const [workspace = "", home = ""] = output.split("\n");
    const host = `${this.options.username}@${this.options.host}`;
    const given = root === "login" ? "the login directory (no --root)" : root;
    const only = "so this runner gives mode full only — start it with --root DIR naming a project directory";
    if (workspace === "/")
      return `the project root ${given} on ${host} is /, which would show a sandbox the whole machine: sandboxed commands are refused there, ${only}`;
    if (workspace && home && within(home, workspace))
      return `the project root ${workspace} (${given}) on ${host} is or holds the login's home ${home}: sandboxed commands are refused there (a workspace-write one could write what a login runs, a read-only one would read all of the home), ${only} below the home`;
    return null;
  }

  /**
   * What a sandbox on the host sees besides the project (runners/sandbox/view.ts), found there once: the system directories
   * it has, the login's $HOME (its private home), and the toolchains the login's PATH names, by the same rules as a
   * local runner's, from the real paths the host reports (and rustup's beside a cargo).
   */
  async #probeView(): Promise<RunnerView> {
    const system = SYSTEM_DIRS.join(" ");
    const script = [
      'printf "home=%s\\n" "$HOME"',
      'printf "realhome=%s\\n" "$(cd -P -- "$HOME" 2>/dev/null && pwd)"',
      `for d in ${system}; do if [ -e "$d" ] || [ -L "$d" ]; then printf "system=%s\\n" "$d"; fi; done`,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell's parameter expansion
      'IFS=:; set -f; for p in $PATH; do r=$(cd -P -- "$p" 2>/dev/null && pwd) && printf "path=%s\\t%s\\n" "$p" "$r" && case "$r" in */.cargo/bin) u=$(cd -P -- "${r%/.cargo/bin}/.rustup" 2>/dev/null && pwd) && printf "dir=%s\\t%s\\n" "${r%/.cargo/bin}/.rustup" "$u";; esac; done; unset IFS; set +f; true',
    ].join("; ");
    return remoteView(await this.#output(script));
  }

  /**
   * Runs a probe on the host and gives its output: "missing" when there is no bwrap (else `steps` run with its path
   * in `$b`), then "env=PATH" when that env can reset signals, which lets the command, not bwrap's waiting process,
   * have them (SANDBOX_SIGNALS).
   */
  async #runProbe(...steps: string[]): Promise<string> {
    const probe = [
      'b=$(command -v bwrap) || { echo "missing"; exit 0; }',
      ...steps,
      `e=$(command -v env) && "$e" --default-signal=${SANDBOX_SIGNALS.join(",")} /bin/sh -c true 2>/dev/null && echo "env=$e"`,
    ].join("; ");
    let output = "";
    const channel = await this.#shell.exec(probe);
    channel.stdin.end();
    channel.stderr.resume();
    for await (const chunk of channel.stdout) output += String(chunk);
    await channel.closed;
    return output;
  }

  /** A command without --root runs in the login's directory, under which a proposal's cwd is taken: shown as `~`. */
  async root(): Promise<string> {
    return "~";
  }

  describe(): string {
    return `ssh: ${this.options.username}@${this.options.host}:${this.options.port ?? 22}`;
  }

  /** Connects (host key, login) and runs a trivial command, within the connection's own timeout and as long again for the command. */
  async check(): Promise<void> {
    const who = `ssh ${this.options.username}@${this.options.host}:${this.options.port ?? 22}`;
    const limitMs = this.options.readyTimeoutMs ?? 10_000;
    const channel = await this.#shell.exec("echo spool-ok").catch((error: unknown) => {
      throw error instanceof BackendUnavailable ? error : new BackendUnavailable(`${who}: logged in, but cannot run a command (${firstLine(error)})`);
    });
    channel.stdin.end();
    let output = "";
    let errors = "";
    channel.stdout.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-200)));
    channel.stderr.on("data", (d: Buffer) => (errors = (errors + d.toString()).slice(-200)));
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      channel.closed,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), limitMs);
      }),
    ]);
    clearTimeout(timer);
    if (exit === null) {
      channel.signal("KILL");
      throw new BackendUnavailable(`${who}: logged in, but "echo" did not finish within ${limitMs / 1000} s — check the user's login shell and profile`);
    }
    if (exit.exitCode !== 0 || !output.includes("spool-ok")) {
      const said = errors.trim().split("\n").at(-1) ?? "";
      throw new BackendUnavailable(
        `${who}: logged in, but a trivial command failed (exit ${exit.exitCode ?? exit.signal ?? "unknown"}${said ? `: ${said}` : ""}) — check the user's login shell`,
      );
    }
  }

  async start(spec: ExecSpec): Promise<Execution> {
    const started = Date.now();
    const wanted = sandboxOf(spec);
    let sandbox: RemoteSandbox | undefined;
    if (wanted?.egress) throw new StartError(egressUnavailable("ssh"));
    if (wanted) {
      const probed = await this.#sandbox();
      if (!probed.bwrap) throw new StartError(`${wanted.mode} commands are refused on this runner: it has no ${wanted.mode} sandbox (${probed.info.detail})`);
      sandbox = {
        ...wanted,
        home: probed.home ?? null,
        bwrap: probed.bwrap,
        userns: Boolean(probed.userns),
        ...(probed.seccomp ? { seccomp: seccompFor(wanted.mode, seccompProgram("x64"), "x64")! } : {}),
        ...(probed.resetSignals ? { resetSignals: probed.resetSignals } : {}),
      };
    }
    // A full command's container: a PID namespace of its own on the remote host, where bwrap there can make one.
    const contain = sandbox ? undefined : (await this.#container()).contain;
    // workspace-write: the repositories bound read-only, and the host's time, for the look once it has ended (repos.ts).
    const root = sandbox?.mode === "workspace-write" ? (spec.workspace ?? spec.cwd) : undefined;
    const before = root ? parseBefore(await this.#output(repositoriesBefore(root))) : null;
    if (root && !before) throw new StartError(`Cannot start the command: the project root ${root} could not be read on the host to find its git repositories`);
    // A clean environment: the remote login's PATH, HOME, LANG, TERM and what the runner was given; never the login's whole environment.
    const channel = await this.#shell.exec(
      remoteScript(shellScript(spec.command), spec.cwd, spec.env, {
        ...(sandbox ? { sandbox } : {}),
        ...(contain ? { contain } : {}),
        ...(spec.workspace ? { workspace: spec.workspace } : {}),
      }),
      // The pty's type reaches sshd and the login shell, outside any sandbox: always ours; the proposal's TERM is set inside.
      spec.tty ? { pty: { ...spec.tty, term: TTY_TERM } } : {},
    );
    // Interactive work keeps stdin open for stream/input; otherwise it gets its bytes, or nothing, and ends.
    const interactive = (spec.interactive || spec.tty) && !spec.stdin;
    if (!interactive) channel.stdin.end(spec.stdin ?? undefined);
    const pidLine = new PidLine();
    channel.stdout.pipe(pidLine);
    // A sandboxed command the wrapper refused (its directory or workspace, as they resolve now): nothing ran, the reason follows.
    if (sandbox && (await pidLine.pid) === null && pidLine.refused) {
      const said: Buffer[] = [];
      pidLine.on("data", (chunk: Buffer) => said.push(chunk));
      channel.stderr.on("data", (chunk: Buffer) => said.push(chunk));
      await Promise.all([channel.closed, finished(channel.stderr).catch(() => undefined), finished(pidLine).catch(() => undefined)]);
      throw new StartError(`Cannot start the command: ${Buffer.concat(said).toString().trim() || "the runner refused it"}`);
    }
    let pid: number | null = null;
    const describe = (): ExecutionTarget => ({ backend: "ssh", host: this.options.host, ...(pid !== null ? { pid } : {}) });
    const located = pidLine.pid.then((p) => {
      pid = p;
      return describe();
    });
    /** Signals the command's process group over a second channel (servers may ignore channel signals); no `--`, which busybox's kill refuses. */
    const signalGroup = async (name: string) => {
      const target = pid ?? (await located).pid;
      if (target === undefined) return;
      const kill = await this.#shell.exec(`kill -${name} -${target} 2>/dev/null || kill -${name} ${target}`).catch(() => null);
      if (kill) {
        kill.stdout.resume();
        kill.stderr.resume();
        kill.stdin.end();
        await kill.closed;
      }
    };
    const control = supervise(
      spec,
      async (signal) => {
        const name = signal === "SIGKILL" ? "KILL" : "TERM";
        channel.signal(name);
        if (pid !== null) await signalGroup(name);
      },
      { killGraceMs: this.options.killGraceMs, closing: this.#closing.signal },
    );
    const poke = interactive
      ? streamControl(
          channel.stdin,
          { signal: signalGroup, ...(spec.tty ? { resize: async (size: TtySize) => channel.setWindow(size) } : {}) },
          { tty: Boolean(spec.tty) },
        )
      : undefined;
    const result = (async (): Promise<ExecResult> => {
      const exit = await channel.closed;
      // The channel closes once sshd sent everything; the output is delivered once both streams ended (what a
      // consumer awaiting the result may rely on, as with the other backends).
      await Promise.all([finished(pidLine).catch(() => undefined), finished(channel.stderr).catch(() => undefined)]);
      control.done();
      const ended = { ...exit, durationMs: Date.now() - started, cancelled: control.cancelled, timedOut: control.timedOut };
      return sandbox || contain ? sandboxResult(ended) : ended;
    })();
    const execution = { stdout: pidLine, stderr: channel.stderr, result, describe, located, ...(poke ? { control: poke } : {}) };
    return root && before ? withRepositoryLook(execution, async () => (await this.#output(repositoriesAfter(root, before))) || null) : execution;
  }

  /** What `script` prints on the host (its stdout; stderr is dropped). */
  async #output(script: string): Promise<string> {
    const channel = await this.#shell.exec(script);
    channel.stdin.end();
    channel.stderr.resume();
    let output = "";
    for await (const chunk of channel.stdout) output += String(chunk);
    await channel.closed;
    return output;
  }

  async close(): Promise<void> {
    this.#closing.abort();
    this.#shell.close();
  }
}

/** A host's view (`#probeView`'s output: `home=`, `realhome=`, `system=`, `path=GIVEN\tREAL` and `dir=` lines) by the local rules. */
export function remoteView(output: string): RunnerView {
  const lines = output.split("\n");
  const value = (key: string) => lines.find((line) => line.startsWith(`${key}=`))?.slice(key.length + 1) ?? "";
  const real = new Map<string, string>();
  for (const line of lines) {
    if (!line.startsWith("path=") && !line.startsWith("dir=")) continue;
    const [given = "", resolved = ""] = line.slice(line.indexOf("=") + 1).split("\t");
    if (given.startsWith("/") && resolved.startsWith("/")) real.set(given, resolved);
  }
  const known = [...real.values()];
  const machine = {
    // A path the host reported, or an ancestor of one it resolved (an ancestor of a real path is real).
    realDir: (path: string) => real.get(path) ?? (known.some((r) => within(r, path)) ? path : null),
    homes: [...new Set([value("realhome"), "/root", "/home"].filter((h) => h.startsWith("/") && h !== "/"))],
  };
  const system = lines.filter((line) => line.startsWith("system=")).map((line) => line.slice(7));
  const entries = lines.filter((line) => line.startsWith("path=")).map((line) => line.slice(5).split("\t")[0] ?? "");
  return { system, home: privateHome(value("home")), toolchains: toolchainRoots(entries, machine) };
}
