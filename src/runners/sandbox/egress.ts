import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { program } from "../../program.js";
import { egressRules } from "../../protocol/egress.js";
import { SECCOMP_FD, seccompPrelude } from "./seccomp.js";
import { SETUP_FD } from "./setup.js";

/**
 * A command in network mode `allowlist` (SPEC §7 Runners, "Sandbox modes"): bwrap gives it a network namespace with a
 * loopback only (`--unshare-net`), and its one way out is the egress proxy (runners/egress/proxy.ts), a process of its own
 * started here outside the sandbox on a Unix socket in a directory of the command's (`EgressDir`), which bwrap binds
 * read-only at `EGRESS_SANDBOX_DIR`. Inside, a forwarder listens on 127.0.0.1 (`EGRESS_HTTP_PORT`, `EGRESS_SOCKS_PORT`)
 * before the command starts (`egressWrapper`), and the proxy variables name it.
 *
 * The launcher is a shell script, like the one of `workspace-write`'s own network (network.ts): bwrap waits
 * (`--block-fd`) until the proxy listens, the proxy's stderr is the command's (so what it allowed and refused is a line
 * of the command's side channel), and once bwrap ends the proxy is told to stop (it writes its summary then).
 */

/** Where the proxy's directory is inside the sandbox: an exception to "no socket outside the sandbox is reachable", by this name only. */
export const EGRESS_SANDBOX_DIR = "/run/spool-egress";
export const EGRESS_SOCKET = "proxy.sock";
export const EGRESS_HTTP_PORT = 3128;
export const EGRESS_SOCKS_PORT = 1080;
/** The listed host-loopback services the forwarder listens for inside (a JSON list of {host, port}), in the proxy's directory. */
const EGRESS_TARGETS = "targets.json";

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * The services on the runner's loopback that the list names by address and port (`127.0.0.1:4873`, `[::1]:8080`): inside
 * the sandbox these addresses are its own loopback (and `NO_PROXY` sends tools straight there), so the forwarder listens
 * on each of them inside and opens every connection through the proxy. Not the forwarder's own two ports on 127.0.0.1.
 */
export function loopbackTargets(allow: readonly string[]): { host: string; port: number }[] {
  const targets = new Map<string, { host: string; port: number }>();
  for (const rule of egressRules(allow)) {
    if (!rule.address || rule.port === null) continue;
    const family = isIP(rule.host) === 6 ? "ipv6" : "ipv4";
    if (!LOOPBACK.check(rule.host, family)) continue;
    if (rule.host === "127.0.0.1" && (rule.port === EGRESS_HTTP_PORT || rule.port === EGRESS_SOCKS_PORT)) continue;
    targets.set(`${rule.host} ${rule.port}`, { host: rule.host, port: rule.port });
  }
  return [...targets.values()];
}

/** The proxy variables a command in `allowlist` mode gets (both spellings: tools read one or the other). */
export function egressVariables(): Record<string, string> {
  const http = `http://127.0.0.1:${EGRESS_HTTP_PORT}`;
  const socks = `socks5h://127.0.0.1:${EGRESS_SOCKS_PORT}`;
  const local = "localhost,127.0.0.1,::1";
  return {
    HTTP_PROXY: http,
    HTTPS_PROXY: http,
    ALL_PROXY: socks,
    NO_PROXY: local,
    http_proxy: http,
    https_proxy: http,
    all_proxy: socks,
    no_proxy: local,
  };
}

const LAUNCHER = [
  // $0: node, $1: the proxy's program file, $2: its options (JSON), $3: bwrap, then bwrap's arguments.
  "if [ -n \"$SPOOL_IGNORE\" ]; then trap '' $SPOOL_IGNORE; fi; unset SPOOL_IGNORE",
  "d=$(mktemp -d) || exit 125",
  'mkfifo "$d/go" "$d/ready" || exit 125',
  "node=$0; proxy=$1; options=$2; bwrap=$3; shift 3",
  "exec 7<&0",
  '"$bwrap" --block-fd 4 "$@" <&7 7<&- 4<"$d/go" &',
  "exec 7<&-",
  "sandbox=$!",
  'exec 5>"$d/go"',
  `"$node" "$proxy" "$options" 6>"$d/ready" </dev/null >/dev/null ${SECCOMP_FD}<&- ${SETUP_FD}>&- 5>&- &`,
  "net=$!",
  // The proxy writes "1" and closes the descriptor (or exits without a byte); read by the shell itself, no program started.
  'ready=; IFS= read -r ready <"$d/ready"; if [ "$ready" != "1" ]; then echo "spool: the egress proxy did not start" >&2; kill -9 $sandbox $net 2>/dev/null; wait; rm -rf "$d"; exit 125; fi',
  // In a subshell: a bwrap that could not set its sandbox up has gone, and the launcher must not die of the SIGPIPE.
  "(printf x >&5) 2>/dev/null",
  "exec 5>&-",
  // The command runs: nothing in $d is opened again (bwrap and the proxy hold what they use), so it goes now, not after
  // the command; a launcher killed while the command runs (a cancel's SIGKILL) leaves nothing in $TMPDIR.
  'rm -rf "$d"',
  "wait $sandbox",
  "code=$?",
  "kill -TERM $net 2>/dev/null",
  "wait $net 2>/dev/null",
  "exit $code",
].join("\n");

/** The directory of one command's proxy on the runner's machine: its socket, the forwarder's program, the summary. */
export interface EgressDir {
  path: string;
  /** The forwarder's file name in it (its program, copied so the sandbox reads it at EGRESS_SANDBOX_DIR). */
  forwarder: string;
  /** What the proxy allowed and refused, once it stopped; empty lists when it left none. */
  summary(): { allowed: string[]; blocked: string[] };
  remove(): void;
}

/** Makes the directory of one command's proxy (mode 0700, under the runner's temporary directory). */
export function egressDir(): EgressDir {
  const path = mkdtempSync(join(tmpdir(), "spool-egress-"));
  const forwarder = program(import.meta.url, "../egress/forwarder-main");
  const name = forwarder.file === null ? "forwarder.cjs" : "forwarder.mjs";
  writeFileSync(join(path, name), forwarder.source ?? readFileSync(forwarder.file!, "utf8"));
  return {
    path,
    forwarder: name,
    summary() {
      try {
        const s = JSON.parse(readFileSync(join(path, "summary.json"), "utf8")) as { allowed?: unknown; blocked?: unknown };
        const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
        return { allowed: list(s.allowed), blocked: list(s.blocked) };
      } catch {
        return { allowed: [], blocked: [] };
      }
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

let proxyFile: string | null = null;

/** The proxy's program as a file node can run: the compiled one, or its bundle written once to the temporary directory. */
export function proxyProgram(): string {
  const p = program(import.meta.url, "../egress/proxy-main");
  if (p.file !== null) return p.file;
  if (proxyFile === null) {
    const dir = mkdtempSync(join(tmpdir(), "spool-egress-proxy-"));
    proxyFile = join(dir, "proxy.cjs");
    writeFileSync(proxyFile, p.source);
    // Gone with this process (the bundle is only written when running from the sources).
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return proxyFile;
}

/** The program and arguments that start bwrap with the egress proxy beside it; `ignore`: signals the launcher and bwrap ignore. */
export function egressLauncher(
  dir: EgressDir,
  policy: { allow: readonly string[]; hosts?: Readonly<Record<string, string>> },
  bwrap: string,
  args: string[],
  ignore: readonly string[],
  seccomp: Buffer | null = null,
): { file: string; args: string[]; env: Record<string, string> } {
  const options = JSON.stringify({
    socket: join(dir.path, EGRESS_SOCKET),
    allow: policy.allow,
    hosts: policy.hosts ?? {},
    readyFd: 6,
    summary: join(dir.path, "summary.json"),
  });
  // Read by the forwarder inside (egressWrapper): the listed host-loopback services it listens for.
  writeFileSync(join(dir.path, EGRESS_TARGETS), JSON.stringify(loopbackTargets(policy.allow)));
  const script = seccomp ? `${seccompPrelude(seccomp)}\n${LAUNCHER}` : LAUNCHER;
  return {
    file: "/bin/sh",
    args: ["-c", script, process.execPath, proxyProgram(), options, bwrap, ...args],
    env: ignore.length > 0 ? { SPOOL_IGNORE: ignore.join(" ") } : {},
  };
}

/**
 * What runs first inside the sandbox (bwrap's arguments end with `/bin/sh -c` it): the forwarder, in the background,
 * and once it listens the command itself. $1: node, $2: the forwarder's file, $3: its options, $4: the command's script.
 */
const WRAPPER = [
  "f=/tmp/.spool-egress-ready",
  'mkfifo -m 600 "$f" || exit 125',
  '{ "$1" "$2" "$3" </dev/null >/dev/null; echo 0 > "$f"; } &',
  'read -r ready < "$f"; rm -f "$f"',
  'if [ "$ready" != 1 ]; then echo "spool: the egress forwarder did not start inside the sandbox" >&2; exit 125; fi',
  'exec /bin/sh -c "$4"',
].join("\n");

/** The arguments after bwrap's `--` (after the signal resetter) that start the forwarder, then `command`. */
export function egressWrapper(forwarder: string, command: string): string[] {
  const options = JSON.stringify({
    socket: `${EGRESS_SANDBOX_DIR}/${EGRESS_SOCKET}`,
    ports: [EGRESS_HTTP_PORT, EGRESS_SOCKS_PORT],
    ready: "/tmp/.spool-egress-ready",
    targetsFile: `${EGRESS_SANDBOX_DIR}/${EGRESS_TARGETS}`,
  });
  return ["/bin/sh", "-c", WRAPPER, "spool-egress", process.execPath, `${EGRESS_SANDBOX_DIR}/${forwarder}`, options, command];
}
