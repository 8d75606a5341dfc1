import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { z } from "zod";
import { noSandbox, type SandboxInfo } from "../../protocol/runner.js";
import { SANDBOX_MODES, type SandboxModeName } from "../../protocol/sandbox.js";
import { DEFAULT_PATH, localBaseEnvironment } from "../environment.js";
import { EGRESS_SANDBOX_DIR, egressWrapper } from "./egress.js";
import { type CopiedDir, systemCopies } from "./etc-view.js";
import { probeNetwork, tried } from "./network.js";
import { SECCOMP_FD, seccompPrelude, seccompProgram } from "./seccomp.js";
import { type BoundPaths, type SetupMarker, setupPrelude } from "./setup.js";
import { localSystem, localToolchains, privateHome, SYSTEM_DIRS, systemArgs, type ViewPaths, within } from "./view.js";
import { cwdOutsideMessage, homeRootProblem } from "./workspace.js";

export { noSandbox, SandboxInfo, SandboxKind, sandboxModes } from "../../protocol/runner.js";
export { within } from "./view.js";

/** The sandbox a spec asks for: its `sandbox`, or read-only for `readOnly`; undefined: none (full). */
export function sandboxOf(spec: { sandbox?: ExecSandbox | undefined; readOnly?: boolean | undefined }): ExecSandbox | undefined {
  return spec.sandbox ?? (spec.readOnly ? { mode: "read-only" } : undefined);
}

/** What a sandboxed command runs in (ExecSpec.sandbox): a mode other than full, what it sees, and what it must not. */
export interface ExecSandbox {
  mode: Exclude<SandboxModeName, "full">;
  /** workspace-write: whether the command keeps the network (default true); read-only never has it. */
  network?: boolean;
  /**
   * What it sees beyond the system, its /tmp and home and the project, as the facts showed it (view.ts): the
   * toolchains' roots and the configured paths (`~/x`: the runner's home's x). Absent: the runner's own toolchains, nothing added.
   */
  view?: { toolchains: readonly string[]; read: readonly string[]; write: readonly string[] };
  /**
   * Known secrets (the server's and the runner's home, token file, database, an SSH key): a command whose view would
   * hold one (or a writable path where one would be made) is refused. Checked, never mounted over.
   */
  secrets?: readonly string[];
  /** workspace-write in network mode `allowlist`: the hosts the egress proxy connects to for it, and no other way out (egress.ts). */
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
 * A command in bubblewrap (SPEC §7 Runners, "Sandbox modes", "What a command sees"), both modes:
 *
 * - a root of its own (bubblewrap's empty tmpfs, read-only once set up) holding only what the command needs
 *   (view.ts): the system directories read-only (/usr, /bin, /sbin, /lib*, /sys, and /etc and /usr/local/etc as
 *   every user of the machine may read them: etc-view.ts); the project root (the workspace), writable in workspace-write; a private
 *   /tmp and /var/tmp (empty tmpfs); a private, empty home at $HOME (writable in workspace-write: tools keep their
 *   caches there for the command's life); the toolchains the runner's PATH names and the configured read paths,
 *   read-only; the configured write paths, writable in workspace-write. Nothing else of any home is there;
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
  /** workspace-write with the network: in a namespace of its own, which the launcher connects (src/runners/sandbox/network.ts). */
  ownNetwork?: boolean;
  /** Network mode `allowlist`: a loopback only, the proxy's directory bound in and the forwarder started first (egress.ts). */
  egress?: { dir: string; forwarder: string };
  /** The project root: writable in workspace-write, and visible in both modes even under /tmp. */
  workspace: string;
  cwd: string;
  /**
   * The runner user's home directories (real paths: the account's and $HOME): workspace-write refuses a workspace that is one
   * of them or holds one, where a command could write what a login runs outside the sandbox (~/.ssh/rc, ~/.profile).
   */
  homes?: readonly string[];
  /** Every other user's home who logs in here (view.ts loginHomes): neither mode takes a workspace that is or holds one. */
  userHomes?: readonly string[];
  /** Existing paths inside the workspace that a login runs (`LOGIN_FILES`): bound again read-only in workspace-write. */
  protect?: readonly string[];
  /**
   * What the command sees beyond the system and the project (view.ts), and the copies of /etc and /usr/local/etc it
   * gets (etc-view.ts). Absent (the probe's): the machine's /etc, no home, nothing added.
   */
  view?: ViewPaths & { copies: readonly CopiedDir[] };
  /** A user namespace of its own (`--unshare-user`; the probe found the machine has them): the command's root is not the host's. */
  userns?: boolean;
  /** The seccomp filter (seccomp.ts) on SECCOMP_FD, which the launcher opens (`launcher`, `networkLauncher`). */
  seccomp?: boolean;
  /** How the sandbox's first program says it is set up, before the command runs (setup.ts). */
  setup?: SetupMarker;
  /** What the runner checked of each path it binds, which the sandbox's first program compares with what it got (with `setup`). */
  bound?: BoundPaths;
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
 * What of /proc sets or triggers something in the kernel (Docker's read-only list): bound read-only over the sandbox's
 * own /proc. Without it a command running as root (CI, most containers) wrote /proc/sys/kernel/core_pattern, and the
 * kernel ran the program it named as the host's root (issue 45): bwrap's --proc covers some of these only where it
 * finds them writable, and /proc/sys, a directory no one may write, is not. A path the kernel does not have is skipped.
 */
export const KERNEL_PATHS = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/asound"] as const;

/** The bwrap arguments that bind `KERNEL_PATHS` read-only; they follow `--proc /proc`. */
export const kernelReadOnly = (): string[] => KERNEL_PATHS.flatMap((path) => ["--ro-bind-try", path, path]);

/** One mount of the view: a tmpfs of its own, or a path of the machine bound read-only or writable. */
type Layer = { kind: "tmpfs"; path: string } | { kind: "ro" | "rw"; path: string; source: string; required?: boolean };

/** The view's mounts, shallowest first (a path inside another mount is mounted on top of it), a tmpfs before a bind at the same depth. */
function layered(layers: Layer[]): string[] {
  const depth = (path: string) => (path === "/" ? 0 : path.split("/").length - 1);
  const order = { tmpfs: 0, ro: 1, rw: 2 } as const;
  const sorted = layers.map((layer, index) => ({ layer, index }));
  sorted.sort((a, b) => depth(a.layer.path) - depth(b.layer.path) || order[a.layer.kind] - order[b.layer.kind] || a.index - b.index);
  return sorted.flatMap(({ layer }) => {
    if (layer.kind === "tmpfs") return ["--tmpfs", layer.path];
    const flag = layer.kind === "ro" ? "--ro-bind" : "--bind";
    // What the view adds may be gone by the start (a toolchain removed): left out, as one that was never there.
    return [layer.required ? flag : `${flag}-try`, layer.source, layer.path];
  });
}

export function bwrapArgs(plan: BwrapPlan): string[] {
  const readOnly = plan.mode === "read-only";
  if (plan.workspace === "/" && !readOnly) throw new Error("a workspace-write sandbox cannot have / as its project root");
  // The runner's home as the project, or a project holding it: workspace-write could plant what a login runs there; a
  // read-only command would read all of it, the private home being the project itself.
  const homes = homeRootProblem(plan.workspace, plan.mode, plan.homes ?? [], plan.userHomes ?? []);
  if (homes) throw new Error(homes);
  if (!within(plan.cwd, plan.workspace)) throw new Error(cwdOutsideMessage(plan.cwd, plan.workspace));
  // The system, read-only; /etc and /usr/local/etc as every user may read them, their copies bound over the system's.
  // A project rooted at / is the probe's (read-only, here or on an SSH host): the system directories the machine has,
  // /etc its own, and no project. Never / itself: binding it takes every mount under it, and one another program is
  // making or removing meanwhile (a container's overlay) fails the whole sandbox.
  const probe = plan.workspace === "/";
  const copies = plan.view?.copies ?? [{ path: "/etc", copy: "/etc" }];
  const args = probe
    ? SYSTEM_DIRS.flatMap((dir) => ["--ro-bind-try", dir, dir])
    : [...systemArgs(), ...copies.flatMap(({ path, copy }) => ["--ro-bind", copy, path])];
  args.push("--dev", "/dev");
  if (readOnly) args.push("--remount-ro", "/dev");
  args.push("--proc", "/proc", ...kernelReadOnly(), "--tmpfs", "/run");
  // The egress proxy's socket: the one way out of an allowlist sandbox, bound before /run is made read-only.
  if (plan.egress) args.push("--ro-bind", plan.egress.dir, EGRESS_SANDBOX_DIR);
  args.push("--remount-ro", "/run");
  args.push("--dir", "/var", "--symlink", "../run", "/var/run", "--symlink", "../run/lock", "/var/lock");
  const view = plan.view;
  const layers: Layer[] = [
    { kind: "tmpfs", path: "/tmp" },
    { kind: "tmpfs", path: "/var/tmp" },
    ...(view?.home ? [{ kind: "tmpfs" as const, path: view.home }] : []),
    ...(view?.readOnly ?? []).map((path): Layer => ({ kind: "ro", path, source: path })),
    ...(view?.writable ?? []).map((path): Layer => ({ kind: readOnly ? "ro" : "rw", path, source: path })),
    ...(probe ? [] : [{ kind: readOnly ? "ro" : "rw", path: plan.workspace, source: plan.workspace, required: true } as const]),
  ];
  args.push(...layered(layers));
  // What a login runs, inside the workspace: read-only again, over everything else.
  if (!readOnly) for (const path of plan.protect ?? []) if (within(path, plan.workspace)) args.push("--ro-bind", path, path);
  // Remounted read-only last: mount points under them were made while they were writable.
  args.push("--remount-ro", "/");
  if (readOnly)
    args.push("--remount-ro", "/tmp", "--remount-ro", "/var/tmp", ...(view?.home && view.home !== plan.workspace ? ["--remount-ro", view.home] : []));
  args.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", ...(readOnly || !plan.network || plan.ownNetwork || plan.egress ? ["--unshare-net"] : []));
  args.push(...(plan.userns ? ["--unshare-user"] : []), "--cap-drop", "ALL");
  if (plan.seccomp) args.push("--seccomp", String(SECCOMP_FD));
  // The runner's death kills the sandbox and everything in it (SPEC §7 "Stopped means stopped").
  args.push("--die-with-parent");
  args.push("--clearenv");
  for (const [name, value] of Object.entries(plan.env)) args.push("--setenv", name, value);
  args.push("--chdir", plan.cwd, "--");
  if (plan.setup) args.push(...setupPrelude(plan.setup, plan.bound ?? null));
  if (plan.resetSignals) args.push(plan.resetSignals, `--default-signal=${SANDBOX_SIGNALS.join(",")}`);
  args.push(...(plan.egress ? egressWrapper(plan.egress.forwarder, plan.command) : ["/bin/sh", "-c", plan.command]));
  return args;
}

export const BWRAP_DETAIL =
  "bubblewrap: read-only (no writes, no network), workspace-write (the project writable); each sees only its view, own PIDs, empty /run; no capabilities, /proc/sys read-only";

/** What the detail adds on the user namespace: whether the command's root is the host's (`userns`: one of its own). */
export function usernsDetail(userns: boolean): string {
  return userns
    ? "a user namespace of its own (root inside is not the host's)"
    : "no user namespace here (a root runner's commands are root without capabilities)";
}

/** The arguments for bwrap running `command` read-only with `cwd` as its project (no home, an empty environment): the probe's. */
export function bwrapCommand(cwd: string, command: string, userns = false, seccomp = false): string[] {
  return bwrapArgs({ mode: "read-only", network: false, workspace: cwd, cwd, env: {}, command, userns, seccomp });
}

/** What the detail adds on the seccomp filter: there, or why not. */
export function seccompDetail(filter: boolean, why: string): string {
  return filter
    ? "a seccomp filter (mounts, modules, keyrings, bpf, io_uring, the clock, setuid and setgid bits refused; read-only: new Unix sockets too)"
    : `no seccomp filter (${why})`;
}

/** A check the probe runs inside the sandbox: neither `/` nor the system bound in it may be writable. */
export const PROBE_COMMAND = "[ ! -w / ] && [ ! -w /usr ]";

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
  // What its commands see besides the project and the configured paths: a fact of every proposal (view.ts).
  // The copies of /etc and /usr/local/etc they get are made now, not at the first command's start (etc-view.ts).
  systemCopies();
  const base = localBaseEnvironment(environ);
  const view = { system: localSystem(), home: privateHome(base.HOME), toolchains: localToolchains(base) };
  return {
    info: { kind: "bwrap", readOnly: true, detail, modes: ALL_MODES, network: network.slirp ? "own" : "shared", egress: true, view },
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

/**
 * bubblewrap's arguments for a `full` command in a PID namespace of its own and nothing else restricted: the whole
 * filesystem bound through (devices included), a /proc of the namespace, the environment set inside (bwrap itself
 * starts with the base environment only), `--die-with-parent` (the runner's death kills it).
 */
export function pidNamespaceArgs(plan: { env: Record<string, string>; cwd: string; command: string; resetSignals?: string | null }): string[] {
  const args = ["--dev-bind", "/", "/", "--proc", "/proc", "--unshare-pid", "--die-with-parent", "--clearenv"];
  for (const [name, value] of Object.entries(plan.env)) args.push("--setenv", name, value);
  args.push("--chdir", plan.cwd, "--");
  if (plan.resetSignals) args.push(plan.resetSignals, `--default-signal=${SANDBOX_SIGNALS.join(",")}`);
  args.push("/bin/sh", "-c", plan.command);
  return args;
}
