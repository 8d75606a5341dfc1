import { existsSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { posix } from "node:path";
import { recordedStateSoon } from "../../home/registry.js";
import type { ViewRecord } from "../../home/views.js";
import { type ExecSpec, firstLine, StartError } from "../backend.js";
import { type NewRepos, reposFrom } from "../new-repos.js";
import { gitReader } from "../sandbox/git-config.js";
import { sandboxOf } from "../sandbox/sandbox.js";
import { mountCheck } from "../sandbox/setup.js";
import { expandHome, localHomes, loginHomes, mountsProblem, pathIdentity, realOrPlanned, runnerHomes } from "../sandbox/view.js";
import { configuredPathsProblem, projectMounts, rootMovedMessage } from "../sandbox/workspace.js";
import type { BindMount, DockerEngine } from "./engine.js";

/** What of a Docker backend's options decides its mounts (DockerBackendOptions). */
export interface MountOptions {
  mountProject?: boolean;
  mountAt?: string;
  /** Another machine's engine: its mounts are that machine's paths, checked there. */
  engine?: DockerEngine;
  passwd?: string;
}

/**
 * What a fresh container gets from the runner's machine (SPEC §7 "What a command sees"): the project root (read-only
 * for read-only work) and the configured view paths at the same paths (`~/`: the runner's home), and nothing else;
 * the directory to start in. A sandboxed command whose mounts would hold a known secret (the server's and the
 * runner's state, a recorded home) is refused: checked, never covered.
 */
export async function containerMounts(
  spec: ExecSpec,
  record: ViewRecord,
  options: MountOptions,
  unmountedCwd: (cwd: string | undefined) => string | undefined,
): Promise<{ mounts: BindMount[]; workdir: string | undefined; check: string; repos: NewRepos | null }> {
  const sandbox = sandboxOf(spec);
  const readOnly = sandbox?.mode === "read-only";
  const home = process.env.HOME || homedir();
  // A configured path that is not there is left out (the engine refuses a mount without a source), as bubblewrap does.
  const added = (paths: readonly string[] | undefined, ro: boolean) =>
    (paths ?? []).flatMap((path): BindMount[] => {
      const source = expandHome(path, home);
      // Mounted from where it leads now, whose identity is what the container's check compares (below).
      return existsSync(source) ? [{ source: realOrPlanned(source), target: source, readOnly: ro }] : [];
    });
  const view = [...added(sandbox?.view?.read, true), ...added(sandbox?.view?.write, readOnly)];
  let project: { mounts: BindMount[]; workdir: string } | null = null;
  let repos: NewRepos | null = null;
  if (options.mountProject) {
    if (!spec.project) {
      throw new StartError(
        `the command's directory (${spec.cwd ?? "none"}) is outside the project root, which is all this runner mounts — run it inside the root, or start the runner with --no-mount`,
      );
    }
    // The engine mounts where the root leads now: a link made on its path since the proposal is refused, not followed.
    let real: string;
    try {
      real = realpathSync(spec.project.root);
    } catch (error) {
      throw new StartError(`Cannot start the command: the project root ${spec.project.root} is not there (${firstLine(error)})`);
    }
    const moved = rootMovedMessage(spec.project.root, real);
    if (moved) throw new StartError(`Cannot start the command: ${moved}`);
    const target = options.mountAt ?? spec.project.root;
    // On this machine's engine, a sandboxed root is checked and protected as the local runner's (sandbox/workspace.ts projectMounts).
    const here = sandbox && !options.engine;
    const planned = here
      ? await projectMounts(real, target, sandbox.mode, runnerHomes(home), loginHomes(options.passwd), gitReader(home, process.env))
      : { mounts: [{ source: real, target, readOnly }], named: [], complete: true };
    if (typeof planned === "string") throw new StartError(`Cannot start the command: ${planned}`);
    const mounts = planned.mounts;
    // The repositories a workspace-write command could write, looked for here once it has ended (new-repos.ts).
    if (here && sandbox.mode === "workspace-write") repos = reposFrom(real, mounts.slice(1), planned);
    project = { mounts, workdir: spec.project.cwd ? posix.join(target, spec.project.cwd) : target };
  }
  const mounts = [...(project ? project.mounts : []), ...view];
  // The configured paths by the local runner's rules: no home or what holds one, no system directory of this machine
  // (its /etc holds root-only files), no writable path holding what a login runs.
  if (sandbox && view.length > 0) {
    const real = (list: BindMount[]) => list.map((mount) => realOrPlanned(mount.source));
    const problem = configuredPathsProblem(real(view.filter((m) => m.readOnly)), real(view.filter((m) => !m.readOnly)), localHomes(home));
    if (problem) throw new StartError(`Cannot start the command: ${problem}`);
  }
  if (sandbox && mounts.length > 0) {
    const roots = mounts.map((mount) => realOrPlanned(mount.source));
    // Before the registry is read, as the local runner's (home/views.ts): a home started in these mounts meanwhile is
    // refused. This machine's engine only: another engine's mounts are that machine's paths.
    if (!options.engine) record.record(roots);
    const recorded = await recordedStateSoon(process.env);
    const secrets = [...(sandbox.secrets ?? []).map(realOrPlanned), ...recorded.files, ...recorded.dirs];
    // Nor may what this machine runs outside every sandbox be writable through a mount (another engine's are its own).
    const why = mountsProblem(roots, options.engine ? [] : roots.filter((_, i) => !mounts[i]!.readOnly), secrets);
    if (why) throw new StartError(`Cannot start the command: ${why}`);
  }
  // What the engine mounts is what was judged: each source's identity now, compared inside the container before the
  // command runs (a root swapped for a link between this check and the engine's mount is refused there). The source
  // is the real path resolved above, taken as it is (a link on it now is refused here): resolved again, a link made
  // since would be followed to where it leads, and that identity is the one the engine would then mount.
  const paths = sandbox
    ? mounts.map((mount) => {
        let id: string | null;
        try {
          id = pathIdentity(mount.source);
        } catch (error) {
          throw new StartError(`Cannot start the command: ${firstLine(error)}`);
        }
        if (id === null) throw new StartError(`Cannot start the command: ${mount.source} is not there`);
        return { path: mount.target, id };
      })
    : [];
  return { mounts, workdir: project ? project.workdir : unmountedCwd(spec.cwd), check: mountCheck(paths, null), repos };
}
