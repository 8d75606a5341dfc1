import { Transform, type TransformCallback, Writable } from "node:stream";
import { BASE_ENV_DEFAULTS } from "./environment.js";
import { HeldOutput } from "./output.js";
import { type ExecSandbox, kernelReadOnly, SANDBOX_SIGNALS } from "./sandbox/sandbox.js";
import { SECCOMP_FD, seccompPrelude } from "./sandbox/seccomp.js";
import { VIEW_SWAPPED } from "./sandbox/setup.js";
import { LOCAL_ETC, SYSTEM_DIRS } from "./sandbox/view.js";
import {
  cwdOutsideMessage,
  gitLinkMessage,
  homeWorkspaceMessage,
  LOGIN_FILES,
  REMOTE_GIT_SEARCH,
  REMOTE_IS_GIT_DIR,
  rootGitMessage,
  rootMovedMessage,
  WORKSPACE_PROTECTED,
} from "./sandbox/workspace.js";

/** What the SSH wrapper prints instead of its pid when it refuses to start a sandboxed command (the reason follows on stderr). */
export const REFUSED = "spool-refused";

/** One of DockerDemuxer's outputs: `room()` waits until its consumer wants more (or destroyed it). */
class DemuxOutput extends HeldOutput {
  readonly #waiters: (() => void)[] = [];

  constructor() {
    super(() => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  room(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/**
 * Splits Docker's multiplexed attach/exec stream (8-byte frame headers: type,
 * 0, 0, 0, big-endian length) into stdout and stderr, with backpressure: a
 * frame is not taken until the output it goes to has room. Payloads are
 * pushed straight into the outputs (plain Readables, no PassThrough).
 */
export class DockerDemuxer extends Writable {
  readonly stdout = new DemuxOutput();
  readonly stderr = new DemuxOutput();
  #pending: Buffer = Buffer.alloc(0);

  constructor() {
    super();
    this.once("finish", () => this.#endOutputs());
    this.once("close", () => this.#endOutputs());
  }

  #endOutputs(): void {
    // A second end is nothing to a Readable.
    if (!this.stdout.destroyed) this.stdout.push(null);
    if (!this.stderr.destroyed) this.stderr.push(null);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let buffer = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const waits: Promise<void>[] = [];
    while (buffer.length >= 8) {
      const length = buffer.readUInt32BE(4);
      if (buffer.length < 8 + length) break;
      const type = buffer[0];
      const payload = buffer.subarray(8, 8 + length);
      buffer = buffer.subarray(8 + length);
      // 1 stdout, 2 stderr; 0 (stdin echo) is not output.
      const target = type === 1 ? this.stdout : type === 2 ? this.stderr : null;
      if (target && payload.length > 0 && !target.offer(payload)) waits.push(target.room());
    }
    this.#pending = buffer.length ? Buffer.from(buffer) : EMPTY;
    if (waits.length === 0) callback();
    else void Promise.all(waits).then(() => callback());
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Takes the first line of a stream as the process id that a wrapper printed
 * (`echo $$; exec …`) and passes everything after it through untouched.
 */
export class PidLine extends Transform {
  readonly pid: Promise<number | null>;
  /** Whether the first line was REFUSED (the wrapper started nothing); known once `pid` resolves. */
  refused = false;
  #resolve!: (pid: number | null) => void;
  #head: Buffer | null = Buffer.alloc(0);

  constructor() {
    super();
    this.pid = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#head === null) {
      callback(null, chunk);
      return;
    }
    const joined = Buffer.concat([this.#head, chunk]);
    const newline = joined.indexOf(10);
    if (newline === -1 && joined.length < 32) {
      this.#head = joined;
      callback();
      return;
    }
    // Under a terminal the line ends in \r\n.
    const line = joined
      .subarray(0, newline === -1 ? 0 : newline)
      .toString()
      .replace(/\r$/, "");
    this.refused = line === REFUSED;
    this.#resolve(/^\d+$/.test(line) ? Number(line) : null);
    this.#head = null;
    callback(null, newline === -1 ? joined : joined.subarray(newline + 1));
  }

  override _flush(callback: TransformCallback): void {
    if (this.#head !== null) this.#resolve(null);
    callback(null, this.#head?.length ? this.#head : undefined);
  }
}

/** Quotes a string for a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The shell line that remote backends run: prints the shell's pid (which the
 * command keeps through `exec`, and which leads the process group) on the
 * first stdout line, moves to the directory, exports the variables, then runs
 * the command with /bin/sh -c.
 */
export function wrapperScript(command: string, cwd: string | undefined, env: Record<string, string>): string {
  const parts = ["echo $$"];
  if (cwd) parts.push(`cd -- ${shellQuote(cwd)}`);
  const vars = Object.entries(env);
  if (vars.length) parts.push(`export ${vars.map(([k, v]) => `${k}=${shellQuote(v)}`).join(" ")}`);
  parts.push(`exec /bin/sh -c ${shellQuote(command)}`);
  return parts.join(" && ");
}

/** A sandbox for `remoteScript`: the mode and what it sees, with bwrap's path on the remote host. */
export interface RemoteSandbox extends ExecSandbox {
  bwrap: string;
  /** The command's private home on the remote host (its $HOME, as the probe found it); null: none. */
  home: string | null;
  /** An env on the remote host that knows --default-signal (see `launcher`): bwrap then ignores SANDBOX_SIGNALS and the command gets them. */
  resetSignals?: string;
  /** A user namespace of its own (`--unshare-user`), where the probe found bwrap can make one there. */
  userns?: boolean;
  /** The seccomp filter for the remote host (runners/sandbox/seccomp.ts), where the probe found bwrap loads it there. */
  seccomp?: Buffer;
}

/** A PID namespace for a `full` command on the remote host (runners/local/container.ts): bwrap's path there, and an env that resets signals. */
export interface RemoteContainer {
  bwrap: string;
  resetSignals?: string;
}

/**
 * The shell line the SSH backend runs: like `wrapperScript`, but the command
 * starts with a clean environment (`env -i`): PATH, HOME, LANG and TERM of
 * the remote login (with defaults where it has none), then `env`.
 *
 * With `sandbox` the command runs in bubblewrap on the remote host (the same
 * arguments as `bwrapArgs`, resolved there): bwrap gets the clean base only
 * and the command's variables are set inside it; the workspace is `workspace`
 * (default the login directory); what is hidden is `sandbox.hide` and the
 * remote login's own Spool home (`$SPOOL_HOME`, else `~/.spool`), where they
 * exist there. Before its pid line it checks, as the paths resolve now: the
 * command's directory inside the workspace, not inside a hidden directory, and
 * for workspace-write a workspace that is not the login's home nor holds it;
 * otherwise it prints REFUSED (the reason on stderr) and runs nothing.
 *
 * With `contain` and no sandbox, the command runs in a PID namespace of its own on the remote host (bwrap with the
 * whole filesystem bound through, nothing else restricted): what it starts, a setsid daemon too, dies with it,
 * with its process group's KILL, and with the SSH session (`--die-with-parent`: sshd's session process ends when
 * the runner's connection does).
 */
export function remoteScript(
  command: string,
  cwd: string | undefined,
  env: Record<string, string>,
  options: { sandbox?: RemoteSandbox; workspace?: string; contain?: RemoteContainer } = {},
): string {
  const parts = ["echo $$", "R=$PWD"];
  if (cwd) parts.push(`cd -- ${shellQuote(cwd)}`);
  const defaults = {
    PATH: `"\${PATH:-${BASE_ENV_DEFAULTS.PATH}}"`,
    HOME: `"\${HOME:-}"`,
    LANG: `"\${LANG:-${BASE_ENV_DEFAULTS.LANG}}"`,
    TERM: `"\${TERM:-${BASE_ENV_DEFAULTS.TERM}}"`,
  };
  const base = Object.entries(defaults).map(([name, value]) => `"${name}="${value}`);
  const sandbox = options.sandbox;
  const contain = options.contain;
  if (!sandbox && contain) {
    parts.push(...containedStart(command, setenvArgs(defaults, env), base, contain));
    return parts.join(" && ");
  }
  if (!sandbox) {
    const vars = Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`));
    parts.push(["exec env -i", ...base, ...vars, "/bin/sh -c", shellQuote(command)].join(" "));
    return parts.join(" && ");
  }
  const readOnly = sandbox.mode === "read-only";
  // The checks come before the pid line: a refused command prints REFUSED there instead, its reason on stderr, and nothing runs.
  parts.shift();
  const view = viewPaths(sandbox);
  parts.push(...sandboxChecks(sandbox, options.workspace, readOnly, view));
  parts.push("echo $$");
  parts.push(...sandboxMounts(sandbox, readOnly, view));
  parts.push(...sandboxStart(command, setenvArgs(defaults, env), base, sandbox, readOnly));
  return parts.join(" && ");
}

/** bwrap's `--setenv` arguments: the base variables (their remote defaults), then the command's, quoted. */
function setenvArgs(defaults: Record<string, string>, env: Record<string, string>): string[] {
  return Object.entries({ ...defaults, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, shellQuote(v)])) }).flatMap(([name, value]) => [
    "--setenv",
    shellQuote(name),
    value,
  ]);
}

/** A full command's start in a PID namespace of its own on the remote host (after the signals' trap, where it resets them). */
function containedStart(command: string, inside: string[], base: string[], contain: RemoteContainer): string[] {
  const parts: string[] = [];
  const reset = contain.resetSignals ? [shellQuote(contain.resetSignals), `--default-signal=${SANDBOX_SIGNALS.join(",")}`] : [];
  // bwrap's waiting process ignores the signals a client may send; the command gets them back at their defaults (see `launcher`).
  if (contain.resetSignals) parts.push(`trap '' ${SANDBOX_SIGNALS.join(" ")}`);
  const args = ["--dev-bind / / --proc /proc --unshare-pid --die-with-parent --clearenv", ...inside, '--chdir "$PWD" --', ...reset];
  parts.push(["exec env -i", ...base, shellQuote(contain.bwrap), ...args, "/bin/sh -c", shellQuote(command)].join(" "));
  return parts;
}

/** A shell group that prints REFUSED, `message` on stderr, and ends the script. */
const refuse = (message: string) => `{ echo ${REFUSED}; printf '%s\\n' "${message}" >&2; exit 1; }`;

/** A view path as the remote shell reads it: `~/x` in the login's home. */
const quoted = (path: string) => (path.startsWith("~/") ? `"$HOME"/${shellQuote(path.slice(2))}` : shellQuote(path));

/** What a sandbox's command sees beyond the workspace, quoted for the remote shell: read (toolchains too) and written. */
interface ViewPaths {
  seen: string;
  written: string;
}

function viewPaths(sandbox: RemoteSandbox): ViewPaths {
  const view = sandbox.view ?? { toolchains: [], read: [], write: [] };
  return { seen: [...view.toolchains, ...view.read].map(quoted).join(" "), written: view.write.map(quoted).join(" ") };
}

/**
 * The checks before the pid line, every path resolved now: the directory in the workspace, a workspace that is not
 * the login's home nor holds it, view paths that are no home, system directory, login file or secret; and the
 * workspace's identity, for the check inside (`S`, `I`).
 */
function sandboxChecks(sandbox: RemoteSandbox, workspace: string | undefined, readOnly: boolean, { seen, written }: ViewPaths): string[] {
  const parts: string[] = [];
  parts.push("C=$(pwd -P)", `W=$(cd -- ${workspace ? shellQuote(workspace) : '"$R"'} && pwd -P)`);
  // Resolved now, at the start: a directory swapped for a symbolic link after the proposal is judged by where it leads today.
  // A link made on the root's path since the proposal would send the whole workspace where it leads: refused.
  if (workspace) {
    const given = workspace.length > 1 ? workspace.replace(/\/+$/, "") : workspace;
    parts.push(`G=${shellQuote(given)}`, `[ "$W" = "$G" ] || ${refuse(rootMovedMessage("$G", "$W") ?? "")}`);
  }
  parts.push(`case "$C/" in "\${W%/}"/*) ;; *) ${refuse(cwdOutsideMessage("$C", "$W"))} ;; esac`);
  parts.push(`{ [ "$W" != / ] || ${refuse("a project rooted at / would show the sandbox the whole machine; name a project directory with --root DIR")}; }`);
  parts.push('H=$( (cd -- "$HOME" && pwd -P) 2>/dev/null || :)');
  // The login's home (or one above it) as the workspace: a command could write what sshd and the login shell run outside
  // the sandbox; a read-only one would read all of the home.
  parts.push(`{ [ -z "$H" ] || case "$H/" in "\${W%/}"/*) ${refuse(homeWorkspaceMessage("$W", "$H", readOnly ? "read-only" : "workspace-write"))} ;; esac; }`);
  // What it sees (runners/sandbox/view.ts), `~/x` in the login's home; every path resolved now (`rp`: a real path, or for one not
  // there its deepest existing ancestor's with the rest).
  parts.push(
    `rp() { p=$1; m=; while [ ! -e "$p" ] && [ ! -L "$p" ] && [ "$p" != / ]; do m="/\${p##*/}$m"; p=$(dirname -- "$p"); done; p=$(readlink -f -- "$p") || p=$1; printf '%s%s\\n' "\${p%/}" "$m"; }`,
  );
  parts.push(...viewPathChecks(seen, written));
  // Known secrets are checks, never mounts: the server's state, and the login's own Spool home there.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell's parameter expansion
  const secrets = [...(sandbox.secrets ?? []).map(quoted), '"${SPOOL_HOME:-$HOME/.spool}"'].join(" ");
  parts.push(
    `for s in ${secrets}; do s=$(rp "$s"); for v in "$W" ${seen} ${written}; do v=$(rp "$v"); case "$s/" in "\${v%/}"/*) ${refuse("the command's view would hold $s (through $v), which holds a credential (a Spool home, token file or database); nothing was run")} ;; esac; case "$v/" in "\${s%/}"/*) ${refuse("the command's view would hold $v, which lies in $s, a credential (a Spool home, token file or database); nothing was run")} ;; esac; done; done`,
  );
  // What bwrap mounts at "$W" is what was judged: its identity now (a link swapped in its place since is the link's),
  // compared inside before the command runs (stat by its absolute path on the host).
  parts.push(
    `{ S=; for p in /usr/bin/stat /bin/stat; do [ -x "$p" ] && S=$p && break; done; [ -n "$S" ] || ${refuse("there is no stat(1) in /usr/bin or /bin on the host, with which the sandbox checks what it mounted; nothing was run")}; }`,
    'I=$("$S" -c %d:%i -- "$W")',
  );
  return parts;
}

/** The checks of the paths the configuration adds to the view (resolved with `rp`): no home, system directory or login file. */
function viewPathChecks(seen: string, written: string): string[] {
  const parts: string[] = [];
  // A path the configuration adds is no home, holds none, and (writable) holds nothing a login runs.
  const homes = '"$H" /root /home';
  if (seen || written) {
    parts.push(
      `for v in ${seen} ${written}; do v=$(rp "$v"); for h in ${homes}; do [ -n "$h" ] || continue; case "$h/" in "\${v%/}"/*) ${refuse("$v is or holds the home directory $h; name the files the command needs in sandboxView.read instead")} ;; esac; done; done`,
    );
  }
  // Nor a system directory: the command sees the system already (a root login's /etc and /usr/local/etc are copies).
  if (seen || written) {
    const systemDirs = SYSTEM_DIRS.map((dir) => `${dir}|${dir}/*`).join("|");
    parts.push(
      `for v in ${seen} ${written}; do v=$(rp "$v"); case "$v" in ${systemDirs}) ${refuse("$v is a system directory: bound as it is, its root-only files would come with it (a sandbox shows /etc and /usr/local/etc only as every user may read them); it cannot be added")} ;; esac; done`,
    );
  }
  if (written) {
    const logins = LOGIN_FILES.map((name) => `"$H"/${shellQuote(name)}`).join(" ");
    parts.push(
      `for v in ${written}; do v=$(rp "$v"); for l in ${logins}; do l=$(rp "$l"); case "$l/" in "\${v%/}"/*) ${refuse("$v is writable and holds $l, which a login runs or trusts outside the sandbox; name another path in sandboxView.write")} ;; esac; case "$v/" in "\${l%/}"/*) ${refuse("$v is writable and lies in $l, which a login runs or trusts outside the sandbox; name another path in sandboxView.write")} ;; esac; done; done`,
    );
  }
  return parts;
}

/** bwrap's mounts, gathered in `"$@"`: the system read-only, /etc as every user may read it, the project, the view, the home. */
function sandboxMounts(sandbox: RemoteSandbox, readOnly: boolean, { seen, written }: ViewPaths): string[] {
  const parts: string[] = [];
  // The system, read-only, as the host has it: a directory bound, a link made again, one it lacks left out.
  const system = SYSTEM_DIRS.filter((dir) => dir !== "/etc").join(" ");
  parts.push(
    `set -- && for d in ${system}; do if [ -L "$d" ]; then set -- "$@" --symlink "$(readlink -- "$d")" "$d"; elif [ -d "$d" ]; then set -- "$@" --ro-bind "$d" "$d"; fi; done`,
  );
  parts.push(etcView());
  parts.push(
    [
      'set -- "$@" --dev /dev',
      readOnly ? "--remount-ro /dev" : "",
      "--proc /proc",
      ...kernelReadOnly(),
      "--tmpfs /run --remount-ro /run --dir /var --symlink ../run /var/run --symlink ../run/lock /var/lock --tmpfs /tmp --tmpfs /var/tmp",
    ]
      .filter(Boolean)
      .join(" "),
  );
  const project = readOnly ? 'set -- "$@" --ro-bind "$W" "$W"' : 'set -- "$@" --bind "$W" "$W"';
  const home = sandbox.home ? shellQuote(sandbox.home) : null;
  // The project before the private home when it holds the home (read-only), else after it, as bubblewrap nests mounts.
  if (home) parts.push(`case ${home}/ in "\${W%/}"/*) ${project} ;; esac`, `set -- "$@" --tmpfs ${home}`);
  if (seen) parts.push(`for v in ${seen}; do set -- "$@" --ro-bind-try "$v" "$v"; done`);
  if (written) parts.push(`for v in ${written}; do set -- "$@" ${readOnly ? "--ro-bind-try" : "--bind-try"} "$v" "$v"; done`);
  parts.push(home ? `case ${home}/ in "\${W%/}"/*) ;; *) ${project} ;; esac` : project);
  // What a login runs and git's directory, where the workspace has them, read-only again inside it (sandbox/workspace.ts WORKSPACE_PROTECTED).
  if (!readOnly) {
    const files = WORKSPACE_PROTECTED.map((name) => shellQuote(name)).join(" ");
    parts.push(`for p in ${files}; do if [ -e "$W/$p" ] && [ ! -L "$W/$p" ]; then set -- "$@" --ro-bind "$W/$p" "$W/$p"; fi; done`);
    // A root that is a git directory is refused; every git directory and .git below it is bound (one a line; a link is refused).
    parts.push(`${REMOTE_IS_GIT_DIR}; if isgit "$W"; then ${refuse(rootGitMessage("$W"))}; fi`);
    parts.push(
      `set -f; o=$IFS; IFS=$(printf '\\n_'); IFS=\${IFS%_}; for g in $(${REMOTE_GIT_SEARCH}); do case "$g" in "$W"/*) if [ -L "$g" ]; then ${refuse(gitLinkMessage("$g"))}; fi; set -- "$@" --ro-bind "$g" "$g" ;; esac; done; IFS=$o; set +f`,
    );
  }
  parts.push('set -- "$@" --remount-ro /');
  if (readOnly)
    parts.push(`set -- "$@" --remount-ro /tmp --remount-ro /var/tmp${home ? ` && case ${home} in "$W") ;; *) set -- "$@" --remount-ro ${home} ;; esac` : ""}`);
  return parts;
}

/**
 * /etc and /usr/local/etc as every user may read them: a login as root reads their root-only files (host keys, shadow,
 * a locally installed program's key) with no capability, so it gets a copy of what others may read, made for this
 * command and removed after it; any other login, /etc itself. /usr/local/etc is copied where its files are (etc-view.ts):
 * its real path when that is a directory in a system directory bound as it is; a link into /etc or out of the view
 * needs none.
 */
function etcView(): string {
  const asIs = SYSTEM_DIRS.filter((dir) => dir !== "/etc")
    .map((dir) => `${dir}|${dir}/*`)
    .join("|");
  const copy = `vc() { mkdir -p -- "$E$1" && (cd -- "$1" && find . \\( -type d ! -perm -005 -prune \\) -o \\( ! -type d ! -type l ! -perm -004 \\) -o -print | tar -cf - --no-recursion -T - 2>/dev/null) | tar -xpf - -C "$E$1" 2>/dev/null; }`;
  return [
    `E= && if [ "$(id -u)" = 0 ]; then U=$(readlink -f -- ${LOCAL_ETC} 2>/dev/null) || U=; [ -d "$U" ] || U=; case "$U" in ${asIs}) ;; *) U= ;; esac`,
    copy,
    `E=$(mktemp -d) && vc /etc && { [ -z "$U" ] || vc "$U"; } || { rm -rf -- "$E"; printf '%s\\n' "spool: cannot copy /etc and ${LOCAL_ETC} for the sandbox (GNU tar and find are needed for a root login)" >&2; exit 125; }`,
    `set -- "$@" --ro-bind "$E/etc" /etc; [ -z "$U" ] || set -- "$@" --ro-bind "$E$U" "$U"; else set -- "$@" --ro-bind /etc /etc; fi`,
  ].join("; ");
}

/**
 * bwrap's start in the sandbox: namespaces unshared, no capability, the seccomp filter, the environment set inside,
 * and the check that what it mounted at "$W" is what was judged before the command runs.
 */
function sandboxStart(command: string, inside: string[], base: string[], sandbox: RemoteSandbox, readOnly: boolean): string[] {
  const parts: string[] = [];
  const unshare = [
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    ...(readOnly || sandbox.network === false ? ["--unshare-net"] : []),
    // The command's root is not the host's where the remote host has user namespaces (the probe's finding).
    ...(sandbox.userns ? ["--unshare-user"] : []),
    "--cap-drop",
    "ALL",
  ];
  const reset = sandbox.resetSignals ? [shellQuote(sandbox.resetSignals), `--default-signal=${SANDBOX_SIGNALS.join(",")}`] : [];
  if (sandbox.resetSignals) parts.push(`trap '' ${SANDBOX_SIGNALS.join(" ")}`);
  // The seccomp filter, opened on SECCOMP_FD for bwrap to read.
  if (sandbox.seccomp) {
    parts.push(seccompPrelude(sandbox.seccomp));
    unshare.push("--seccomp", String(SECCOMP_FD));
  }
  // --die-with-parent: the sandbox ends with sshd's session process, so with the runner's connection (SPEC §7 "Stopped means stopped").
  const sandboxed = [shellQuote(sandbox.bwrap), '"$@"', ...unshare, "--die-with-parent", "--clearenv", ...inside, '--chdir "$C" --', ...reset];
  const check = `[ "$("$1" -c %d:%i -- "$3" 2>/dev/null)" = "$2" ] || { echo "${VIEW_SWAPPED}" >&2; exit 125; }; exec /bin/sh -c "$4"`;
  const start = ["env -i", ...base, ...sandboxed, "/bin/sh -c", shellQuote(check), 'spool-check "$S" "$I" "$W"', shellQuote(command)].join(" ");
  // With copies of /etc (and /usr/local/etc), the shell waits to remove them (it leads the process group either way); else bwrap takes its place.
  parts.push(`if [ -n "$E" ]; then ${start}; c=$?; rm -rf -- "$E"; exit $c; else exec ${start}; fi`);
  return parts;
}
