import { execFile } from "node:child_process";
import { z } from "zod";

/**
 * Where read-only work (the `env` tool, `ask` runs) runs on a backend
 * (SPEC §7 Runners, "Read-only sandbox"): somewhere writes fail, or nowhere —
 * then the runner says so at attach and the server refuses such work on it.
 */
export const SandboxKind = z.enum(["bwrap", "docker", "none"]);

export const SandboxInfo = z.strictObject({
  kind: SandboxKind.describe("bwrap (bubblewrap, on the runner's machine or the SSH host), docker (a read-only container), or none"),
  readOnly: z.boolean().describe("Whether read-only commands run where writes fail; false: the server refuses read-only work on this runner"),
  detail: z.string().max(500).describe("What the sandbox is, or why there is none"),
});
export type SandboxInfo = z.output<typeof SandboxInfo>;

/** How a runner picks its sandbox: `auto` uses one when the backend has it; `off` reports none (read-only work is refused); `require` refuses to start without one. */
export const SandboxMode = z.enum(["auto", "off", "require"]);
export type SandboxMode = z.output<typeof SandboxMode>;

export const noSandbox = (detail: string): SandboxInfo => ({ kind: "none", readOnly: false, detail });

export const SANDBOX_OFF = "the runner was started with --sandbox off";

/**
 * The bubblewrap arguments that run a command read-only (before `--chdir DIR
 * -- /bin/sh -c COMMAND`):
 *
 * - the whole filesystem, every mount under it included, bound read-only;
 * - a minimal /dev of its own (null, zero, full, random, urandom, tty, pts),
 *   read-only too (writing to /dev/null still works: device nodes are not
 *   files);
 * - /proc of a PID namespace of its own: it sees and signals only its own
 *   processes;
 * - an empty, read-only /run (also /var/run): the sockets there, such as
 *   Docker's, are out of reach (a socket accepts connections on a read-only
 *   mount);
 * - no network (a loopback of its own): nothing is sent anywhere, not even
 *   to the Spool server;
 * - its own IPC and host-name namespaces, no capabilities even for root (no
 *   remounting), and no new privileges (bubblewrap sets no_new_privs).
 */
export const BWRAP_ARGS: readonly string[] = [
  "--ro-bind",
  "/",
  "/",
  "--dev",
  "/dev",
  "--remount-ro",
  "/dev",
  "--proc",
  "/proc",
  "--tmpfs",
  "/run",
  "--remount-ro",
  "/run",
  "--unshare-pid",
  "--unshare-ipc",
  "--unshare-net",
  "--unshare-uts",
  "--cap-drop",
  "ALL",
];

export const BWRAP_DETAIL = "bubblewrap: the filesystem read-only, /dev minimal and /run empty, own PID namespace, no network, no capabilities";

/** The full argument list for bwrap running `command` read-only in `cwd`. */
export function bwrapCommand(cwd: string, command: string): string[] {
  return [...BWRAP_ARGS, "--chdir", cwd, "--", "/bin/sh", "-c", command];
}

/** A check the probe runs inside the sandbox: `/` must not be writable. */
export const PROBE_COMMAND = "[ ! -w / ]";

/**
 * Whether `bwrap` can build the read-only sandbox on this machine: runs the
 * probe in it once. Missing, not permitted (no user namespaces, a container
 * that forbids mounts) or not read-only: no sandbox, with the reason.
 */
export function probeBwrap(bwrap: string, env: NodeJS.ProcessEnv): Promise<SandboxInfo> {
  return new Promise((resolve) => {
    execFile(bwrap, bwrapCommand("/", PROBE_COMMAND), { env, timeout: 10_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve({ kind: "bwrap", readOnly: true, detail: BWRAP_DETAIL });
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return resolve(noSandbox(`bubblewrap (${bwrap}) is not installed on the runner's machine (Debian: apt-get install bubblewrap)`));
      const why = String(stderr).trim().split("\n")[0] || (typeof code === "number" ? "/ stayed writable inside it" : error.message.split("\n")[0]);
      resolve(noSandbox(`bubblewrap (${bwrap}) cannot build the read-only sandbox here: ${why}`));
    });
  });
}

/** Caches a probe: the first call runs it, every later one gets its answer. */
export function once<T>(probe: () => Promise<T>): () => Promise<T> {
  let answer: Promise<T> | null = null;
  return () => (answer ??= probe());
}
