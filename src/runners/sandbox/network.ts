import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { DEFAULT_PATH, localBaseEnvironment } from "../environment.js";
import { SECCOMP_FD, seccompPrelude } from "./seccomp.js";
import { SETUP_FD } from "./setup.js";

/**
 * A workspace-write command's network (SPEC §7 "Sandbox modes", issue 37): a network namespace of its own, connected
 * outward by slirp4netns with the host's loopback refused (`--disable-host-loopback`). The command reaches the
 * network, but it cannot bind a port on the host's loopback (it binds its own), nor connect to the host's: it cannot
 * stand in for the server on its port, nor reach the server's TCP port at all.
 *
 * bubblewrap creates the namespace (`--unshare-net`) and waits (`--block-fd`) until slirp4netns, started outside
 * the sandbox on the pid bwrap reports (`--info-fd`), has brought the interface up (`--ready-fd`); then the command
 * runs. The launcher is a shell script (so a terminal command, started through a pty, gets it as well): it waits for
 * bwrap, stops slirp4netns and exits with bwrap's status. Everything stays in the command's process group.
 */
const LAUNCHER_START = [
  // $0: slirp4netns, $1: bwrap, then bwrap's arguments; $SPOOL_IGNORE: signals the launcher and bwrap ignore.
  "if [ -n \"$SPOOL_IGNORE\" ]; then trap '' $SPOOL_IGNORE; fi; unset SPOOL_IGNORE",
  "d=$(mktemp -d) || exit 125",
];
// Then, when there is one, the seccomp filter's file, in $d (networkLauncher).
const LAUNCHER = [
  'mkfifo "$d/go" "$d/info" "$d/ready" || exit 125',
  "slirp=$0; bwrap=$1; shift",
  // Opened in the order the launcher opens the other ends (a FIFO's open waits for its peer).
  // Started in the background with the launcher's own stdin (a shell gives a background job /dev/null otherwise).
  "exec 7<&0",
  '"$bwrap" --info-fd 3 --block-fd 4 "$@" <&7 7<&- 4<"$d/go" 3>"$d/info" &',
  "exec 7<&-",
  "sandbox=$!",
  'exec 5>"$d/go"',
  // bwrap's --info-fd JSON has `"child-pid": N,` on a line of its own. Read by the shell itself, as everything below
  // but mktemp, mkfifo and rm: each program a launch starts costs ~2-4 ms of CPU, and a launch is on every command's way.
  'child=; while IFS=\' :,\' read -r key value _; do if [ "$key" = \'"child-pid"\' ]; then child=$value; fi; done <"$d/info"',
  "case $child in *[!0-9]*) child= ;; esac",
  // No pid: bwrap failed before its sandbox (its status says why), or said something unexpected and waits on go:
  // not left waiting for ever (the command never runs). Killed and reaped before go closes: bwrap takes an end of
  // file on --block-fd as the go-ahead (closed first, the command ran before the kill reached it), and its child
  // has its SIGKILL (--die-with-parent) once bwrap is gone.
  'if [ -z "$child" ]; then kill -9 $sandbox 2>/dev/null; wait $sandbox; code=$?; exec 5>&-; rm -rf "$d"; exit $code; fi',
  // bwrap's child gives the namespace's loopback 127.0.0.1 (RTM_NEWADDR, exclusive) after it reported its pid, and
  // slirp4netns --configure brings lo up, which makes the kernel add 127.0.0.1 itself: started before bwrap's add,
  // it made that fail ("bwrap: loopback: Failed RTM_NEWADDR", 16 of 200 launches 20 at once) and the command never
  // ran. So slirp4netns waits until the address is in the namespace's routes (or bwrap is gone; at most 1000 polls).
  'loopback() { while IFS= read -r line; do case $line in *127.0.0.1*) return 0 ;; esac; done <"/proc/$child/net/fib_trie"; return 1; }',
  'n=0; while [ -r "/proc/$child/net/fib_trie" ] && ! loopback && kill -0 $sandbox 2>/dev/null && [ $n -lt 1000 ]; do n=$((n + 1)); sleep 0.01; done',
  // A bwrap that made a user namespace (where the machine has them, root runners' too) owns the network namespace from there.
  'userns=; if ! [ "/proc/$child/ns/user" -ef /proc/$$/ns/user ]; then userns="--userns-path=/proc/$child/ns/user"; fi',
  `"$slirp" --configure --mtu=65520 --disable-host-loopback --ready-fd=6 $userns --netns-type=path "/proc/$child/ns/net" tap0 6>"$d/ready" >/dev/null 2>"$d/err" ${SECCOMP_FD}<&- ${SETUP_FD}>&- &`,
  "net=$!",
  // slirp4netns writes "1" on --ready-fd and closes it (or exits without a byte).
  'ready=; IFS= read -r ready <"$d/ready"; if [ "$ready" != "1" ]; then echo "spool: slirp4netns could not give the sandbox its network: $(head -c 300 "$d/err")" >&2; kill -9 $sandbox $net 2>/dev/null; wait; rm -rf "$d"; exit 125; fi',
  // In a subshell: a bwrap that could not set its sandbox up has gone, and the launcher must not die of the SIGPIPE.
  "(printf x >&5) 2>/dev/null",
  "exec 5>&-",
  // The command runs: nothing in $d is opened again (bwrap and slirp4netns hold what they use), so it goes now, not after
  // the command; a launcher killed while the command runs (a cancel's SIGKILL) leaves nothing in $TMPDIR.
  'rm -rf "$d"',
  "wait $sandbox",
  "code=$?",
  "kill -9 $net 2>/dev/null",
  "wait $net 2>/dev/null",
  "exit $code",
];

/** The program and arguments that start bwrap in a network namespace of its own with slirp4netns; `ignore`: signals the launcher and bwrap ignore. */
export function networkLauncher(
  slirp: string,
  bwrap: string,
  args: string[],
  ignore: readonly string[],
  seccomp: Buffer | null = null,
): { file: string; args: string[]; env: Record<string, string> } {
  // The seccomp filter, for args that name it, opened before bwrap starts (bwrap reads it; slirp4netns is started without it).
  const script = [...LAUNCHER_START, ...(seccomp ? [seccompPrelude(seccomp, '"$d"')] : []), ...LAUNCHER].join("\n");
  return { file: "/bin/sh", args: ["-c", script, slirp, bwrap, ...args], env: ignore.length > 0 ? { SPOOL_IGNORE: ignore.join(" ") } : {} };
}

export interface NetworkProbe {
  /** slirp4netns's absolute path, or null: workspace-write commands share the machine's network (today's behaviour). */
  slirp: string | null;
  /** For runner/list: what a workspace-write command's network is. */
  detail: string;
}

export const OWN_NETWORK_DETAIL = "workspace-write commands get a network namespace of their own (slirp4netns, outbound only, no host loopback)";

/**
 * Whether workspace-write commands can get a network namespace of their own here: slirp4netns in the runner's own
 * PATH, and one sandboxed `true` started through the launcher. When not, says why (they keep the machine's network).
 * A launch that fails is tried again (PROBE_TRIES in all): one failure on a loaded machine (the 10 s limit) would
 * otherwise change the `network` fact every client shows, and the stored rules that hold it, until the runner restarts.
 */
export async function probeNetwork(bwrap: string, bwrapArgs: string[], environ: NodeJS.ProcessEnv, seccomp: Buffer | null = null): Promise<NetworkProbe> {
  const shared = (why: string) => ({ slirp: null, detail: `workspace-write commands share the machine's network: ${why}` });
  const path = findSlirp(environ);
  if (!path) return shared("slirp4netns is not installed on the runner's machine (Debian: apt-get install slirp4netns)");
  const launch = networkLauncher(path, bwrap, bwrapArgs, [], seccomp);
  const failure = await tried(
    () =>
      new Promise<string | null>((done) =>
        execFile(launch.file, launch.args, { env: { ...localBaseEnvironment(environ), ...launch.env }, timeout: 10_000 }, (error, _stdout, stderr) =>
          done(error ? String(stderr).trim().split("\n")[0] || error.message.split("\n")[0]! : null),
        ),
      ),
  );
  return failure === null
    ? { slirp: path, detail: OWN_NETWORK_DETAIL }
    : shared(`slirp4netns cannot give a sandbox its network here (${failure}; ${PROBE_TRIES} tries)`);
}

/** How many times a sandbox probe's launch is tried before its failure is the answer. */
export const PROBE_TRIES = 3;

/** Runs `attempt` until it succeeds (null) or has failed PROBE_TRIES times; the last failure's reason. */
export async function tried(attempt: () => Promise<string | null>): Promise<string | null> {
  let why: string | null = null;
  for (let i = 0; i < PROBE_TRIES; i++) {
    why = await attempt();
    if (why === null) return null;
  }
  return why;
}

function findSlirp(environ: NodeJS.ProcessEnv): string | null {
  for (const dir of (environ.PATH || DEFAULT_PATH).split(":")) {
    if (!dir.startsWith("/")) continue;
    try {
      accessSync(join(dir, "slirp4netns"), constants.X_OK);
      return join(dir, "slirp4netns");
    } catch {
      // not in this directory
    }
  }
  return null;
}
