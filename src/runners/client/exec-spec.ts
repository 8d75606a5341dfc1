import { isAbsolute, join } from "node:path";
import type { RunnerExecParams } from "../../protocol/runner.js";
import { loaderVariables, loaderVariablesMessage } from "../../protocol/sandbox.js";
import { type ExecSpec, StartError } from "../backend.js";
import { commandVariables } from "../environment.js";
import type { RunnerClientOptions } from "./options.js";

/** The project root as the server sees it, when the command's directory is inside it (the server sends root + relative). */
function projectOf(params: RunnerExecParams): { root: string; cwd: string } | undefined {
  const root = projectRoot(params.cwd, params.cwdRelative);
  return root === null ? undefined : { root, cwd: params.cwdRelative };
}

/** The project root on the backend: --root, else the server's path for a local backend; remote ones decide (the login directory). */
function workspaceOf(options: RunnerClientOptions, project: { root: string } | undefined): string | undefined {
  if (options.root) return options.root;
  return options.backend.kind === "local" ? project?.root : undefined;
}

function cwdOf(options: RunnerClientOptions, params: RunnerExecParams): string | undefined {
  const { root } = options;
  if (root) return params.cwdRelative ? join(root, params.cwdRelative) : root;
  if (options.backend.kind === "local") return params.cwd;
  return params.cwdRelative ? params.cwdRelative : undefined;
}

/** What a runner asks its backend to run for one `runner/exec`; throws StartError for loader variables. */
export function execSpec(params: RunnerExecParams, options: RunnerClientOptions, signal: AbortSignal): ExecSpec {
  const cwd = cwdOf(options, params);
  const project = projectOf(params);
  const workspace = workspaceOf(options, project);
  // Defence in depth: the server refuses these at proposal time already.
  const loader = loaderVariables(params.env);
  if (loader.length > 0) throw new StartError(loaderVariablesMessage(loader));
  const sandbox = params.sandbox ?? (params.readOnly ? "read-only" : "full");
  return {
    command: params.command,
    ...(cwd !== undefined ? { cwd } : {}),
    ...(project ? { project } : {}),
    // Only what the server's commandEnv and this runner's passEnv name, and the proposal's env: never the runner's whole environment.
    env: commandVariables(options.environ ?? process.env, [...(params.passEnv ?? []), ...(options.passEnv ?? [])], params.env, (names) =>
      options.log.warn(
        `runner ${options.name}: withheld from the command: ${names.join(", ")} (their values carry credentials; name them exactly in commandEnv or --pass-env to pass them)`,
      ),
    ),
    ...(params.readOnly ? { readOnly: true } : {}),
    ...(sandbox !== "full"
      ? {
          sandbox: {
            mode: sandbox,
            ...(params.network !== undefined ? { network: params.network } : {}),
            ...(params.egress !== undefined ? { egress: { allow: params.egress } } : {}),
            ...(params.view ? { view: params.view } : {}),
            secrets: [...(params.secrets ?? []), ...(options.secrets ?? [])],
          },
        }
      : {}),
    ...(workspace !== undefined ? { workspace } : {}),
    timeoutMs: params.timeoutMs,
    signal,
    // stdin stays open for stream/input until stream/eof or the command's exit.
    interactive: true,
    ...(params.tty ? { tty: params.tty } : {}),
  };
}

/**
 * The project root from `runner/exec`'s absolute `cwd` and its `cwdRelative`; null when the
 * directory is outside the root (then the root cannot be told from it).
 */
export function projectRoot(cwd: string, cwdRelative: string): string | null {
  if (cwdRelative === "") return cwd;
  if (isAbsolute(cwdRelative) || cwdRelative === ".." || cwdRelative.startsWith("../")) return null;
  const suffix = `/${cwdRelative}`;
  if (!cwd.endsWith(suffix)) return null;
  return cwd.slice(0, -suffix.length) || "/";
}
