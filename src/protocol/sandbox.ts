import { z } from "zod";

/**
 * Where an accepted command runs (SPEC §7 Runners, "Sandbox modes"). Every
 * client shows a proposal's mode before the decision.
 *
 * - `read-only`: the filesystem read-only, a private /tmp, the server's home
 *   hidden, its own PID namespace, no network (the `env` tool, `ask` runs);
 * - `workspace-write`: the project root writable and everything else
 *   read-only, a private /tmp, the server's home hidden, its own PID
 *   namespace, network on unless configured off (the default for `sh` where
 *   the runner has a sandbox);
 * - `full`: no sandbox; only by explicit configuration or a per-proposal flag.
 */
export const SANDBOX_MODES = ["read-only", "workspace-write", "full"] as const;
export const SandboxModeName = z.enum(SANDBOX_MODES);
export type SandboxModeName = z.output<typeof SandboxModeName>;

/** One line a person reads next to the mode's name. */
export const SANDBOX_MODE_WORDS: Record<SandboxModeName, string> = {
  "read-only": "read-only sandbox: nothing can be written, no network",
  "workspace-write": "sandbox: only the project directory is writable",
  full: "no sandbox: the command can do anything the runner's user can",
};
