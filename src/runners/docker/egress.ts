import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { accessSync, chmodSync, closeSync, constants, mkdirSync, openSync, statSync, writeSync } from "node:fs";
import { delimiter, join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { firstLine, StartError } from "../backend.js";
import {
  EGRESS_HTTP_PORT,
  EGRESS_SANDBOX_DIR,
  EGRESS_SOCKET,
  EGRESS_SOCKS_PORT,
  type EgressDir,
  egressDir,
  egressVariables,
  loopbackTargets,
  proxyProgram,
} from "../sandbox/egress.js";
import type { BindMount } from "./engine.js";

/**
 * Network mode `allowlist` on the Docker runner (SPEC §7 Runners, "Sandbox modes"), enforced from outside the
 * container: the container has no network (`--network none`: a loopback of its own, nothing else), the egress proxy
 * (runners/egress/proxy.ts) runs beside it as a process of the runner's, and the forwarder that gives the proxy an address on
 * the container's 127.0.0.1 runs on the runner's machine too, with the runner's node, inside the container's network
 * namespace only (`nsenter --net`): it listens on the container's loopback and connects to the proxy's Unix socket
 * through the runner's filesystem. Nothing runs in the image, so any image works (busybox, distroless): no runtime, no
 * socat, no copied binary. The price: the runner must be root on the engine's machine (entering a container's
 * namespace), which `egressSupport` says before the runner offers the mode.
 *
 * The command must not start before the forwarder listens: the container's shell first reads a line from a FIFO
 * bound in read-only at EGRESS_SANDBOX_DIR, which the runner writes once the forwarder is ready. The FIFO is also the
 * proof that the engine shares this machine's kernel and files: the container's PID 1 must see the same FIFO there.
 */

/** Where nsenter is on PATH; null: not there. */
function nsenter(): string | null {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
    const file = join(dir, "nsenter");
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Whether this runner can enforce an allowlist in Docker containers; a string says why not. */
export function egressSupport(): true | string {
  if (process.getuid?.() !== 0) return "the runner is not root, and the forwarder must enter each container's network namespace";
  if (nsenter() === null) return "nsenter (util-linux) is not on PATH";
  return true;
}

/** One allowlist command's proxy and forwarder; made before its container (`startDockerEgress`). */
export interface DockerEgress {
  /** The gate's directory, bound read-only at EGRESS_SANDBOX_DIR. */
  mount: BindMount;
  /** The proxy variables, naming the forwarder on the container's 127.0.0.1. */
  env: Record<string, string>;
  /** The container's command: wait at the gate, then the command's script. */
  cmd(script: string): string[];
  /** Once the container runs (`pid`: its PID 1 on this machine): the forwarder in its network namespace, then the gate opens. */
  open(pid: number | undefined): Promise<void>;
  /** The command's stderr with the proxy's lines (what it allowed and refused) among it. */
  stderr(container: Readable): Readable;
  /** Stops the proxy (it writes its summary) and the forwarder, removes the directory: what was allowed and refused. */
  close(): Promise<{ allowed: string[]; blocked: string[] }>;
}

const WAIT = `read -r go < ${EGRESS_SANDBOX_DIR}/go && [ "$go" = 1 ] || { echo "spool: the egress forwarder did not start" >&2; exit 125; }; exec /bin/sh -c "$1"`;

/** Waits for "1" on `stream`, or the process's end (its stderr's first line saying why). */
function ready(child: ChildProcess, stream: Readable, what: string): Promise<void> {
  let said = "";
  child.stderr?.on("data", (chunk: Buffer) => (said = (said + chunk.toString("utf8")).slice(-2000)));
  return new Promise((resolve, reject) => {
    stream.once("data", (chunk: Buffer) => (chunk.toString().startsWith("1") ? resolve() : reject(new StartError(`${what} did not start`))));
    child.once("error", (error) => reject(new StartError(`${what} did not start: ${firstLine(error)}`)));
    child.once("exit", (code) => reject(new StartError(`${what} did not start (exit ${code}): ${firstLine(said.trim()) || "no reason given"}`)));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())));

/** Starts the proxy of one command (open() waits until it listens) and makes the gate its container waits at. */
export async function startDockerEgress(policy: { allow: readonly string[]; hosts?: Readonly<Record<string, string>> }): Promise<DockerEgress> {
  const dir: EgressDir = egressDir();
  const gate = join(dir.path, "gate");
  let gateFd: number | null = null;
  let proxy: ChildProcess | null = null;
  let forwarder: ChildProcess | null = null;
  const stopAll = () => {
    forwarder?.kill("SIGKILL");
    proxy?.kill("SIGKILL");
    if (gateFd !== null) closeSync(gateFd);
    gateFd = null;
    dir.remove();
  };
  try {
    // Readable by any user (the image's user may not be the runner's); only the runner writes it.
    mkdirSync(gate);
    chmodSync(gate, 0o755);
    execFileSync("mkfifo", ["-m", "644", join(gate, "go")], { stdio: "ignore" });
    // Opened for reading and writing: never blocks, and holds what is written until the container reads it.
    gateFd = openSync(join(gate, "go"), "r+");
    const options = JSON.stringify({
      socket: join(dir.path, EGRESS_SOCKET),
      allow: policy.allow,
      hosts: policy.hosts ?? {},
      readyFd: 3,
      summary: join(dir.path, "summary.json"),
      stopWithStdin: true,
    });
    proxy = spawn(process.execPath, [proxyProgram(), options], { stdio: ["pipe", "ignore", "pipe", "pipe"] });
  } catch (error) {
    stopAll();
    throw error instanceof StartError ? error : new StartError(`Cannot start the egress proxy: ${firstLine(error)}`);
  }
  const running = proxy;
  // The command's stderr, the proxy's lines among it: taken from the start, so no line is lost before the container's joins.
  const merged = new PassThrough();
  let open = 2;
  const endOne = () => {
    open -= 1;
    if (open === 0) merged.end();
  };
  running.stderr!.pipe(merged, { end: false });
  running.stderr!.once("end", endOne);
  // Awaited in open(): the proxy starts while the engine makes the container.
  const listening = ready(running, running.stdio[3] as Readable, "the egress proxy");
  listening.catch(() => undefined);
  return {
    mount: { source: gate, target: EGRESS_SANDBOX_DIR, readOnly: true },
    env: egressVariables(),
    cmd: (script) => ["/bin/sh", "-c", WAIT, "spool-egress", script],
    async open(pid) {
      await listening;
      const fifo = statSync(join(gate, "go"));
      const seen = pid === undefined ? null : statSync(`/proc/${pid}/root${EGRESS_SANDBOX_DIR}/go`, { throwIfNoEntry: false });
      if (!seen || seen.ino !== fifo.ino || seen.dev !== fifo.dev)
        throw new StartError(
          "network mode allowlist is not available on this Docker runner: the engine does not run on the runner's machine (the container does not see the runner's files), and the forwarder must run beside it",
        );
      const options = JSON.stringify({
        socket: join(dir.path, EGRESS_SOCKET),
        ports: [EGRESS_HTTP_PORT, EGRESS_SOCKS_PORT],
        ready: 3,
        stopWithStdin: true,
        // The listed host-loopback services, reached at their own address and port inside the container.
        targets: loopbackTargets(policy.allow),
      });
      const child = spawn(nsenter() ?? "nsenter", [`--net=/proc/${pid}/ns/net`, "--", process.execPath, join(dir.path, dir.forwarder), options], {
        stdio: ["pipe", "ignore", "pipe", "pipe"],
      });
      forwarder = child;
      await ready(child, child.stdio[3] as Readable, "the egress forwarder in the container's network namespace");
      writeSync(gateFd!, "1\n");
    },
    stderr(container) {
      container.pipe(merged, { end: false });
      container.once("end", endOne);
      return merged;
    },
    async close() {
      forwarder?.kill("SIGKILL");
      running.kill("SIGTERM");
      await exited(running);
      const summary = dir.summary();
      stopAll();
      return summary;
    },
  };
}
