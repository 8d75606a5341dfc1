import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, realpathSync, statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { z } from "zod";
import { coverableKind, coverablePath } from "../home-registry.js";
import { noSandbox, type SandboxInfo } from "../protocol/runner.js";
import { SANDBOX_MODES, type SandboxModeName } from "../protocol/sandbox.js";
import { EGRESS_SANDBOX_DIR, egressWrapper } from "./egress-launcher.js";
import { DEFAULT_PATH, localBaseEnvironment } from "./environment.js";
import { probeNetwork, tried } from "./sandbox-network.js";
import { type SetupMarker, setupPrelude } from "./sandbox-setup.js";
import { SECCOMP_FD, seccompPrelude, seccompProgram } from "./seccomp.js";

export { noSandbox, SandboxInfo, SandboxKind, sandboxModes } from "../protocol/runner.js";

/** The sandbox a spec asks for: its `sandbox`, or read-only for `readOnly`; undefined: none (full). */
export function sandboxOf(spec: { sandbox?: ExecSandbox | undefined; readOnly?: boolean | undefined }): ExecSandbox | undefined {
  return spec.sandbox ?? (spec.readOnly ? { mode: "read-only" } : undefined);
}

/** What a sandboxed command runs in (ExecSpec.sandbox): a mode other than full, and what to hide from it. */
export interface ExecSandbox {
  mode: Exclude<SandboxModeName, "full">;
  /** workspace-write: whether the command keeps the network (default true); read-only never has it. */
  network?: boolean;
  /** Paths to hide (the server's and the runner's home, token file, database): those that exist where the command runs are covered. */
  hide?: readonly string[];
  /** workspace-write in network mode `allowlist`: the hosts the egress proxy connects to for it, and no other way out (egress-launcher.ts). */
  egress?: { allow: readonly string[] };
}

/** Why a backend that cannot enforce a network allowlist refuses a command asking for one (never runs it unrestricted). */
export const egressUnavailable = (backend: string, why = "it cannot put an egress proxy between the command and the network") =>
  `network mode allowlist is not available on the ${backend} runner: ${why}, and it does not run the command without one; accept it on a local runner with bubblewrap, or a Docker runner started as root on the engine's machine`;

/** How a runner picks its sandbox (`spool runner --sandbox`): `auto` uses one when the backend has it; `off` reports none (only full work runs there); `require` refuses to start without one. */
export const SandboxMode = z.enum(["auto", "off", "require"]);
export type SandboxMode = z.output<typeof SandboxMode>;

export const SANDBOX_OFF = "the runner was started with --sandbox off";

/**
 * A command in bubblewrap (SPEC §7 Runners, "Sandbox modes"), both modes:
 *
 * - the whole filesystem, every mount under it included, bound read-only;
 *   in workspace-write the project root (the workspace) is bound again,
 *   writable;
 * - a /tmp of its own (an empty tmpfs: read-only in read-only mode), so
 *   nothing of the machine's /tmp (sockets, other users' files) is reached;
 * - the paths to hide (the server's home, token file and database) covered:
 *   a directory by an empty read-only tmpfs, a file by /dev/null — except a
 *   directory that holds the workspace (its files are named one by one);
 * - a minimal /dev of its own (read-only in read-only mode);
 * - /proc of a PID namespace of its own: it sees and signals only its own
 *   processes, not the server's or the runner's; the kernel's settings and
 *   triggers in it (`KERNEL_PATHS`: /proc/sys, /proc/sysrq-trigger, ...)
 *   bound again read-only, so even a command running as root writes none;
 * - an empty, read-only /run (also /var/run): the sockets there, such as
 *   Docker's, are out of reach (a socket accepts connections on a read-only
 *   mount);
 * - no network in read-only mode (a loopback of its own); in workspace-write
 *   the machine's network unless it is cut;
 * - its own IPC and host-name namespaces, no capabilities even for root (no
 *   remounting), and no new privileges (bubblewrap sets no_new_privs);
 * - where the machine has them (`userns`), a user namespace of its own: a
 *   runner running as root maps its own uid (0 to 0, so what the command
 *   writes in the workspace is owned as before), but the command's root is
 *   root of that namespace only, never the host's;
 * - the command's environment set inside (`--clearenv`, `--setenv`): bwrap
 *   itself starts with the runner's base environment only, so nothing of the
 *   proposal (PATH, loader variables) reaches the launcher.
 */
export interface BwrapPlan {
  mode: Exclude<SandboxModeName, "full">;
  /** workspace-write: keep the machine's network. */
  network: boolean;
  /** workspace-write with the network: in a namespace of its own, which the launcher connects (src/runners/sandbox-network.ts). */
  ownNetwork?: boolean;
  /** Network mode `allowlist`: a loopback only, the proxy's directory bound in and the forwarder started first (egress-launcher.ts). */
  egress?: { dir: string; forwarder: string };
  /** The project root: writable in workspace-write, and visible in both modes even under /tmp. */
  workspace: string;
  cwd: string;
  /**
   * The runner user's home directories (real paths: the account's and $HOME): workspace-write refuses a workspace that is one
   * of them or holds one, where a command could write what a login runs outside the sandbox (~/.ssh/rc, ~/.profile).
   */
  homes?: readonly string[];
  /** Existing paths inside the workspace that a login runs (`LOGIN_FILES`): bound again read-only in workspace-write. */
  protect?: readonly string[];
  /** Existing files to cover with /dev/null and directories to cover with an empty tmpfs (see `hiddenPaths`). */
  hideFiles: readonly string[];
  hideDirs: readonly string[];
  /** A user namespace of its own (`--unshare-user`; the probe found the machine has them): the command's root is not the host's. */
  userns?: boolean;
  /** The seccomp filter (seccomp.ts) on SECCOMP_FD, which the launcher opens (`launcher`, `networkLauncher`). */
  seccomp?: boolean;
  /** How the sandbox's first program says it is set up, before the command runs (sandbox-setup.ts). */
  setup?: SetupMarker;
  /** The command's whole environment, set inside the sandbox. */
  env: Record<string, string>;
  command: string;
  /**
   * An `env` that knows --default-signal: the command starts through it with the signals the launcher ignores
   * (`SANDBOX_SIGNALS`) back at their defaults. Without it, bwrap is started as it is and a signal sent to the
   * command's group ends bwrap itself (and so the sandbox) rather than reaching the command alone.
   */
  resetSignals?: string | null;
}

/**
 * The signals a client may send (stream/signal, a terminal's ^C and ^\) that bwrap's own process, which waits
 * outside the sandbox, would die of: it is started ignoring them (`launcher`), and the command gets them back at
 * their defaults, so a trap in the command sees them and its exit code comes through.
 */
export const SANDBOX_SIGNALS = ["INT", "TERM", "HUP", "QUIT", "USR1", "USR2"] as const;

/**
 * The program and arguments that start bwrap: through /bin/sh ignoring SANDBOX_SIGNALS when the command resets them,
 * and opening the seccomp filter (`seccomp`, for args that name it) on SECCOMP_FD.
 */
export function launcher(bwrap: string, args: string[], resetSignals: boolean, seccomp: Buffer | null = null): { file: string; args: string[] } {
  if (!resetSignals && !seccomp) return { file: bwrap, args };
  const steps = [...(seccomp ? [seccompPrelude(seccomp)] : []), ...(resetSignals ? [`trap '' ${SANDBOX_SIGNALS.join(" ")}`] : []), 'exec "$0" "$@"'];
  return { file: "/bin/sh", args: ["-c", steps.join("; "), bwrap, ...args] };
}

/**
 * The files and directories under a home that a login (sshd, a login or interactive shell, a desktop session) runs or
 * trusts: a workspace-write command must not write them (SPEC §7 "Sandbox modes"), so those present in the workspace
 * are bound read-only inside it.
 */
export const LOGIN_FILES = [
  ".ssh",
  ".bashrc",
  ".bash_profile",
  ".bash_login",
  ".bash_logout",
  ".profile",
  ".zshrc",
  ".zprofile",
  ".zshenv",
  ".zlogin",
  ".config/autostart",
  ".config/systemd",
] as const;

/** Why workspace-write is refused when the workspace is the runner user's home or holds it; `home` names it. */
export function homeWorkspaceMessage(workspace: string, home: string): string {
  return `workspace-write is refused with ${workspace} as the project root: it is or holds the runner user's home directory ${home}, where a command could write what a login runs outside the sandbox (~/.ssh, ~/.profile, ~/.bashrc); start the runner with --root DIR naming a project directory (below the home), or choose a project directory as the project root`;
}

/** Why a command is refused when its directory (as the runner resolves it now) is not where the proposal said. */
export function cwdOutsideMessage(cwd: string, workspace: string): string {
  return `the command's directory resolves to ${cwd}, outside the project root ${workspace} (a symbolic link changed since the proposal?); nothing was run`;
}

/** Why a command is refused when its directory lies inside a path the sandbox hides (the server's home, its token or database). */
export function cwdHiddenMessage(cwd: string, hidden: string): string {
  return `the command's directory ${cwd} is inside ${hidden}, which the sandbox hides (the server's home, token or database); nothing was run`;
}

/**
 * What of /proc sets or triggers something in the kernel (Docker's read-only list): bound read-only over the sandbox's
 * own /proc. Without it a command running as root (CI, most containers) wrote /proc/sys/kernel/core_pattern, and the
 * kernel ran the program it named as the host's root (issue 45): bwrap's --proc covers some of these only where it
 * finds them writable, and /proc/sys, a directory no one may write, is not. A path the kernel does not have is skipped.
 */
export const KERNEL_PATHS = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/asound"] as const;

/** The bwrap arguments that bind `KERNEL_PATHS` read-only; they follow `--proc /proc`. */
export const kernelReadOnly = (): string[] => KERNEL_PATHS.flatMap((path) => ["--ro-bind-try", path, path]);

/** Whether `path` is `dir` or lies under it. */
export function within(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

export function bwrapArgs(plan: BwrapPlan): string[] {
  const readOnly = plan.mode === "read-only";
  const args = ["--ro-bind", "/", "/", "--dev", "/dev"];
  if (readOnly) args.push("--remount-ro", "/dev");
  args.push("--proc", "/proc", ...kernelReadOnly(), "--tmpfs", "/run");
  // The egress proxy's socket: the one way out of an allowlist sandbox, bound before /run is made read-only.
  if (plan.egress) args.push("--ro-bind", plan.egress.dir, EGRESS_SANDBOX_DIR);
  args.push("--remount-ro", "/run", "--tmpfs", "/tmp");
  if (plan.workspace === "/") {
    // Everything is the workspace: nothing to bind again read-only; writable, nothing would be left read-only.
    if (!readOnly) throw new Error("a workspace-write sandbox cannot have / as its project root");
  } else args.push(readOnly ? "--ro-bind" : "--bind", plan.workspace, plan.workspace);
  if (!readOnly) {
    const home = (plan.homes ?? []).find((home) => within(home, plan.workspace));
    if (home) throw new Error(homeWorkspaceMessage(plan.workspace, home));
    for (const path of plan.protect ?? []) if (within(path, plan.workspace)) args.push("--ro-bind", path, path);
  }
  if (!within(plan.cwd, plan.workspace)) throw new Error(cwdOutsideMessage(plan.cwd, plan.workspace));
  // A hidden directory that holds the command's directory is never left uncovered for it: the command is refused.
  const around = plan.hideDirs.find((dir) => within(plan.cwd, dir) && !within(plan.workspace, dir));
  if (around) throw new Error(cwdHiddenMessage(plan.cwd, around));
  const covering = plan.hideDirs.filter((dir) => !within(plan.workspace, dir));
  // What a covered directory holds is hidden with it (a mount point inside it would show as an empty entry).
  const dirs = covering.filter((dir) => !covering.some((other) => other !== dir && within(dir, other)));
  for (const file of plan.hideFiles) if (!dirs.some((dir) => within(file, dir))) args.push("--ro-bind", "/dev/null", file);
  for (const dir of dirs) args.push("--tmpfs", dir);
  // Remounted read-only last: mount points under them were made while they were writable.
  for (const dir of dirs) args.push("--remount-ro", dir);
  if (readOnly) args.push("--remount-ro", "/tmp");
  args.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", ...(readOnly || !plan.network || plan.ownNetwork || plan.egress ? ["--unshare-net"] : []));
  args.push(...(plan.userns ? ["--unshare-user"] : []), "--cap-drop", "ALL");
  if (plan.seccomp) args.push("--seccomp", String(SECCOMP_FD));
  // The runner's death kills the sandbox and everything in it (SPEC §7 "Stopped means stopped").
  args.push("--die-with-parent");
  args.push("--clearenv");
  for (const [name, value] of Object.entries(plan.env)) args.push("--setenv", name, value);
  args.push("--chdir", plan.cwd, "--");
  if (plan.setup) args.push(...setupPrelude(plan.setup));
  if (plan.resetSignals) args.push(plan.resetSignals, `--default-signal=${SANDBOX_SIGNALS.join(",")}`);
  args.push(...(plan.egress ? egressWrapper(plan.egress.forwarder, plan.command) : ["/bin/sh", "-c", plan.command]));
  return args;
}

/**
 * Sorts the paths to hide that exist here into files and directories (their
 * real paths); a path that does not exist is left out (there is nothing to
 * hide, and bubblewrap cannot cover what is not there), and so is one no
 * sandbox covers: a device, a system directory, a path under the sandbox's
 * own /dev, /proc or /run (home-registry.ts `coverablePath`).
 */
export function hiddenPaths(paths: readonly string[]): { hideFiles: string[]; hideDirs: string[] } {
  const hideFiles = new Set<string>();
  const hideDirs = new Set<string>();
  for (const path of paths) {
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      continue;
    }
    const stat = statSync(real, { throwIfNoEntry: false });
    const kind = stat && coverablePath(real) ? coverableKind(stat) : null;
    if (kind === "dir") hideDirs.add(real);
    else if (kind === "file") hideFiles.add(real);
  }
  return { hideFiles: [...hideFiles].sort(), hideDirs: [...hideDirs].sort() };
}

/**
 * The first path to hide that is not there yet and would lie inside `workspace` (judged by its deepest existing
 * ancestor's real path), or undefined. bubblewrap covers only what exists, so a workspace-write command could create
 * such a path (a token file, a database's WAL) on the host, and the server would read it at its next start.
 */
export function missingHiddenInside(paths: readonly string[], workspace: string): string | undefined {
  // A path inside a hidden directory that exists (the home) is covered by hiding that directory.
  const covered = paths.filter((path) => existsSync(path)).map((path) => realpathSync(path));
  for (const path of paths) {
    const missing: string[] = [];
    let current = resolvePath(path);
    while (!existsSync(current) && dirname(current) !== current) {
      missing.unshift(basename(current));
      current = dirname(current);
    }
    if (missing.length === 0) continue;
    const ancestor = realpathSync(current);
    if (covered.some((hidden) => within(ancestor, hidden))) continue;
    const real = join(ancestor, ...missing);
    if (within(real, workspace)) return real;
  }
  return undefined;
}

/** Why a workspace-write command is refused when a path the sandbox must hide is not there yet inside its writable workspace. */
export function missingHiddenMessage(path: string, workspace: string): string {
  return `${path}, which the sandbox must hide (the server's or the runner's home, token or database), is not there yet and lies inside the writable workspace ${workspace}: a command could create it and the server would read it at its next start; nothing was run`;
}

export const BWRAP_DETAIL =
  "bubblewrap: read-only (the filesystem read-only, no network) and workspace-write (the project writable); both with their own /tmp, PID namespace and empty /run, the server's home hidden, no capabilities, /proc/sys read-only";

/** What the detail adds on the user namespace: whether the command's root is the host's (`userns`: one of its own). */
export function usernsDetail(userns: boolean): string {
  return userns
    ? "a user namespace of its own (root inside is not the host's)"
    : "no user namespace here (a root runner's commands are root without capabilities)";
}

/** The arguments for bwrap running `command` read-only in `cwd` (nothing hidden, an empty environment): the probe's. */
export function bwrapCommand(cwd: string, command: string, userns = false, seccomp = false): string[] {
  return bwrapArgs({ mode: "read-only", network: false, workspace: cwd, cwd, hideFiles: [], hideDirs: [], env: {}, command, userns, seccomp });
}

/** What the detail adds on the seccomp filter: there, or why not. */
export function seccompDetail(filter: boolean, why: string): string {
  return filter
    ? "a seccomp filter (mounts, modules, keyrings, bpf, io_uring, the clock, setuid and setgid bits refused; read-only: new Unix sockets too)"
    : `no seccomp filter (${why})`;
}

/** A check the probe runs inside the sandbox: `/` must not be writable. */
export const PROBE_COMMAND = "[ ! -w / ]";

/** Where `program` is: itself when it names a path, else the first executable file of that name in `path` (a PATH value); null when none. */
export function findProgram(program: string, path: string | undefined): string | null {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (program.includes("/")) return executable(program) ? resolvePath(program) : null;
  for (const dir of (path ?? "").split(":")) {
    if (!dir.startsWith("/")) continue;
    const file = join(dir, program);
    if (executable(file)) return file;
  }
  return null;
}

const ALL_MODES: SandboxModeName[] = [...SANDBOX_MODES];

/** An `env` of the runner's PATH that can reset signals to their defaults (GNU coreutils 8.31 and later), or null. */
function signalResetter(environ: NodeJS.ProcessEnv): Promise<string | null> {
  const env = findProgram("env", environ.PATH || DEFAULT_PATH);
  if (!env) return Promise.resolve(null);
  return new Promise((done) =>
    execFile(env, [`--default-signal=${SANDBOX_SIGNALS.join(",")}`, "/bin/sh", "-c", "true"], { env: {}, timeout: 10_000 }, (error) =>
      done(error ? null : env),
    ),
  );
}

/** What the runner found of bubblewrap here: what it gives, and how each sandboxed command is started. */
export interface SandboxProbe {
  info: SandboxInfo;
  /** bwrap's absolute path; null: no sandbox. */
  path: string | null;
  resetSignals?: string | null;
  slirp?: string | null;
  userns?: boolean;
  /** The seccomp filter bwrap loads, or null where there is none. */
  seccomp?: Buffer | null;
}

/**
 * Whether `bwrap` can build the sandbox on this machine: finds it in the
 * runner's own PATH (`environ`, never a command's), then runs the probe in
 * it once with the runner's base environment. Missing, not permitted (no
 * user namespaces, a container that forbids mounts) or not read-only: no
 * sandbox, with the reason. The answer carries the absolute path every
 * sandboxed command is then started with.
 */
export async function probeBwrap(bwrap: string, environ: NodeJS.ProcessEnv): Promise<SandboxProbe> {
  const path = findProgram(bwrap, environ.PATH || DEFAULT_PATH);
  if (!path) {
    return {
      info: noSandbox(`bubblewrap (${bwrap}) is not installed on the runner's machine (Debian: apt-get install bubblewrap)`),
      path: null,
    };
  }
  // A sandbox found is the same for every runner of this process with the same bwrap file and environment: its
  // answer is kept (each probe starts 4-6 processes). One that found none is not: the next runner looks again.
  const key = probeKey(path, environ);
  const known = key && builtSandboxes.get(key);
  if (known) return known;
  const probe = await probeAnew(path, environ);
  if (key && probe.path) builtSandboxes.set(key, probe);
  return probe;
}

/** The sandboxes this process found, by bwrap's file (its identity) and the environment the probe ran with. */
const builtSandboxes = new Map<string, SandboxProbe>();

function probeKey(path: string, environ: NodeJS.ProcessEnv): string | null {
  try {
    const file = statSync(path);
    return JSON.stringify([path, file.dev, file.ino, file.size, file.mtimeMs, environ.PATH ?? "", localBaseEnvironment(environ)]);
  } catch {
    return null;
  }
}

async function probeAnew(path: string, environ: NodeJS.ProcessEnv): Promise<SandboxProbe> {
  // Each probe tried again when it fails (a launch that timed out on a loaded machine is not the machine's answer).
  const run = (args: string[], filter: Buffer | null = null) =>
    tried(
      () =>
        new Promise<string | null>((done) => {
          const start = launcher(path, args, false, filter);
          execFile(start.file, start.args, { env: localBaseEnvironment(environ), timeout: 10_000 }, (error, _stdout, stderr) => {
            if (!error) return done(null);
            const code = (error as NodeJS.ErrnoException).code;
            done(String(stderr).trim().split("\n")[0] || (typeof code === "number" ? "/ stayed writable inside it" : firstLineOf(error.message)));
          });
        }),
    );
  // A user namespace of its own where the machine has them; else (a container that forbids them) the sandbox without one.
  const userns = (await run(bwrapCommand("/", PROBE_COMMAND, true))) === null;
  const why = userns ? null : await run(bwrapCommand("/", PROBE_COMMAND, false));
  if (why !== null) return { info: noSandbox(`bubblewrap (${path}) cannot build the sandbox here: ${why}`), path: null };
  // And the seccomp filter where there is one for this machine and bwrap can load it.
  const program = seccompProgram();
  const refused = program ? await run(bwrapCommand("/", PROBE_COMMAND, userns, true), program) : `none for ${process.arch}`;
  const seccomp = refused === null ? program : null;
  // And whether workspace-write commands get a network of their own (else they keep the machine's, as the detail says).
  const network = await probeNetwork(path, bwrapCommand("/", "true", userns, Boolean(seccomp)), environ, seccomp);
  const detail = `${BWRAP_DETAIL}; ${usernsDetail(userns)}; ${seccompDetail(Boolean(seccomp), refused ?? "")}; ${network.detail}`.slice(0, 500);
  return {
    info: { kind: "bwrap", readOnly: true, detail, modes: ALL_MODES, network: network.slirp ? "own" : "shared", egress: true },
    path,
    resetSignals: await signalResetter(environ),
    slirp: network.slirp,
    userns,
    seccomp,
  };
}

/**
 * How a command ended, told as it would be without what stands between the runner and it: bwrap (and Docker,
 * for a container's or an exec's status) report a command killed by signal N as exit 128+N, so such an exit
 * is given as that signal (an `exit 143` of the command's own reads as SIGTERM, as a shell's `$?` would leave
 * it unclear).
 */
export function sandboxResult<R extends { exitCode: number | null; signal: string | null }>(result: R): R {
  const code = result.exitCode;
  if (code === null || code <= 128 || code > 128 + 64) return result;
  const name = Object.entries(osConstants.signals).find(([, number]) => number === code - 128)?.[0];
  return name ? { ...result, exitCode: null, signal: name } : result;
}

const firstLineOf = (text: string): string => text.split("\n")[0] ?? text;

/** Caches a probe: the first call runs it, every later one gets its answer. */
export function once<T>(probe: () => Promise<T>): () => Promise<T> {
  let answer: Promise<T> | null = null;
  return () => (answer ??= probe());
}
