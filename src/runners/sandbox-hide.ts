import { join } from "node:path";
import { type RecordedState, recordedState } from "../home-registry.js";
import { hiddenPaths, within } from "./sandbox.js";

/*
 * What a sandboxed command does not see besides the server's own state (SPEC §7 "Sandbox modes", issue 54): every
 * Spool home, token file, database and socket recorded on this machine (home-registry.ts), and the credential paths
 * the server names (`sandboxHide`, `~/` being the runner user's home). Kept apart from the bwrap argument builder,
 * which only covers what it is given.
 */

/** `~/x` as each of the runner user's `homes`; an absolute path as it is; anything else is left out. */
export function expandHome(paths: readonly string[], homes: readonly string[]): string[] {
  return paths.flatMap((path) => (path.startsWith("~/") ? homes.map((home) => join(home, path.slice(2))) : path.startsWith("/") ? [path] : []));
}

/**
 * The files and directories to cover for one command: `hide` (the server's and the runner's state, the credential
 * paths) and the registry's (`recorded`, read now when not given), as real paths that exist. With `privateTmp`
 * (bubblewrap's own /tmp), what lies in the machine's /tmp outside the workspace is left out: the command's /tmp is
 * empty already.
 */
export function sandboxHidden(
  hide: readonly string[],
  homes: readonly string[],
  env: NodeJS.ProcessEnv,
  privateTmp?: { workspace: string },
  // The registry's paths come resolved and sorted into files and directories by one pass over it (home-registry.ts):
  // a realpath and a listing per directory that holds recorded paths, not two existence checks, a realpath and a stat each.
  recorded: RecordedState = recordedState(env),
): { hideFiles: string[]; hideDirs: string[] } {
  const given = hiddenPaths(expandHome(hide, homes));
  const hidden = {
    hideFiles: [...new Set([...given.hideFiles, ...recorded.files])].sort(),
    hideDirs: [...new Set([...given.hideDirs, ...recorded.dirs])].sort(),
  };
  if (!privateTmp) return hidden;
  const kept = (path: string) => !within(path, "/tmp") || within(path, privateTmp.workspace) || within(privateTmp.workspace, path);
  return { hideFiles: hidden.hideFiles.filter(kept), hideDirs: hidden.hideDirs.filter(kept) };
}
