import { lstatSync } from "node:fs";
import type { Readable } from "node:stream";

/*
 * Whether a sandbox was set up (SPEC §7 "Sandbox modes"): bubblewrap exits 1 with a message of its own when it cannot
 * build the sandbox, which a command could do as well. So the sandbox's first program, before the command's, says it
 * is set up: on a descriptor of its own (SETUP_FD), closed before the command runs, or under a terminal (which has no
 * other descriptor) with a one-time text as the terminal's first output, taken out before anyone reads it. A start
 * that ends without saying it never ran the command: its failure is the start's, not the command's exit, and a start
 * that failed because a path it was to cover vanished meanwhile (another home removed between the registry's pass and
 * bubblewrap's mount, outside /tmp, where the root is read-only) is set up again (runners/local/local.ts).
 */

/** The descriptor the sandbox's first program writes one byte to once the sandbox is set up (9 is the seccomp filter's, 3-7 the launchers'). */
export const SETUP_FD = 8;

/** How the sandbox says it is set up: a byte on SETUP_FD, or (under a terminal) `nonce` as its first output. */
export type SetupMarker = { fd: typeof SETUP_FD } | { nonce: string };

/**
 * What the runner checked of each path it binds: the path (as real a path as the check found it) and the identity of
 * what was there, its device and inode as `stat -c %d:%i` prints them (view.ts `pathIdentity`).
 */
export interface BoundPaths {
  /** stat(1) by its absolute path on the machine (never the command's PATH, which the proposal names). */
  stat: string;
  paths: readonly { path: string; id: string }[];
}

const quoted = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/**
 * A shell line that checks, where the paths were mounted (a sandbox, a container), that each holds what the runner
 * checked: a path judged at the start, then swapped for a link before it was mounted, brings in where the link leads.
 * A mismatch says so on stderr and exits 125. `stat` null: the first of /usr/bin/stat and /bin/stat there (an image's).
 */
export function mountCheck(paths: BoundPaths["paths"], stat: string | null): string {
  if (!paths.length) return "";
  const find = stat ? `s=${quoted(stat)}` : `s=; for p in /usr/bin/stat /bin/stat; do [ -x "$p" ] && s=$p && break; done`;
  const same = `[ -n "$s" ] && [ "$("$s" -c %d:%i -- ${paths.map((p) => quoted(p.path)).join(" ")} 2>/dev/null)" = ${quoted(paths.map((p) => p.id).join("\n"))} ]`;
  return `${find}; ${same} || { echo "${VIEW_SWAPPED}" >&2; exit 125; }; `;
}

/**
 * The sandbox's first program: checks that each bound path holds what the runner checked (`mountCheck`), says it is
 * set up (`marker`), lets go of the descriptor, and runs what follows it. A mismatch runs nothing.
 */
export function setupPrelude(marker: SetupMarker, bound: BoundPaths | null = null): string[] {
  const ready = "fd" in marker ? `printf . >&${marker.fd} && exec "$@" ${marker.fd}>&-` : `printf ${marker.nonce} && exec "$@"`;
  return ["/bin/sh", "-c", `${bound ? mountCheck(bound.paths, bound.stat) : ""}${ready}`, "spool-setup"];
}

/** What the sandbox says when a bound path no longer holds what was checked (the command did not run). */
export const VIEW_SWAPPED =
  "a path of the view (the project root, a toolchain, a configured path or a login file in the project) was replaced while the sandbox was built, so it is not what was checked (or there is no stat(1) in /usr/bin or /bin to tell); nothing was run";

/** A sandbox that was not set up, and what its launcher and bubblewrap said; the command did not run. */
export class SetupFailed extends Error {
  constructor(readonly said: string) {
    super(`the sandbox could not be set up: ${said.trim().split("\n")[0] || "no reason given"}`);
  }
}

/**
 * Waits until the sandbox is set up: a byte on `marker` (SETUP_FD); false when `marker` ends first (every process
 * that held it exited: the sandbox was not set up, and the command did not run). An abort stops the wait (true): the
 * command's supervision takes the abort from there. Listens at once: call it as the process is started.
 */
export async function setUp(marker: Readable, signal: AbortSignal): Promise<boolean> {
  const ran = await new Promise<boolean>((resolve) => {
    const done = (value: boolean) => () => {
      signal.removeEventListener("abort", aborted);
      resolve(value);
    };
    const aborted = done(true);
    marker.once("data", done(true));
    marker.once("end", done(false));
    // Not known: taken as run (a command is never started twice).
    marker.once("error", done(true));
    signal.addEventListener("abort", aborted, { once: true });
    marker.resume();
  });
  marker.destroy();
  return ran;
}

/** What a launcher and bubblewrap said on `stderr` (to its end: call once nothing else writes it), as SetupFailed. */
export async function setupFailed(stderr: Readable): Promise<SetupFailed> {
  const parts: Buffer[] = [];
  for await (const part of stderr) parts.push(part as Buffer);
  return new SetupFailed(Buffer.concat(parts).toString("utf8"));
}

/**
 * The terminal's side of `setUp`: reads what comes before `nonce` (a launcher's warning) and the nonce itself;
 * resolves with what came besides it, for the command's output. Rejects with SetupFailed, holding what the terminal
 * showed, when the command's process exits first.
 */
export function ttySetUp(
  subscribe: (listener: (data: Buffer) => void) => { dispose(): void },
  exited: Promise<unknown>,
  nonce: string,
  signal: AbortSignal,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0);
    let settled = false;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      subscription.dispose();
      signal.removeEventListener("abort", aborted);
      settle();
    };
    const aborted = () => finish(() => resolve(seen));
    const subscription = subscribe((data) => {
      seen = Buffer.concat([seen, data]);
      const at = seen.indexOf(nonce);
      if (at >= 0) finish(() => resolve(Buffer.concat([seen.subarray(0, at), seen.subarray(at + nonce.length)])));
    });
    signal.addEventListener("abort", aborted, { once: true });
    void exited.then(() => finish(() => reject(new SetupFailed(seen.toString("utf8")))));
  });
}

/** The first of `paths` that is no longer there (a hidden path removed since the registry's pass), if any. */
export function vanished(paths: readonly string[]): string | undefined {
  return paths.find((path) => lstatSync(path, { throwIfNoEntry: false }) === undefined);
}
