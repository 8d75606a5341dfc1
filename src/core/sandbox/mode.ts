import type { SpoolConfig } from "../../config/config.js";
import { type SandboxInfo, sandboxModes } from "../../protocol/runner.js";
import type { SandboxModeName } from "../../protocol/sandbox.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { invalid } from "../refusals.js";

/** What the mode asks of the runners: the project's default runner and its sandbox (RunnerRegistry.defaultSandbox). */
export interface DefaultRunner {
  defaultSandbox(projectId: number): Promise<{ name: string; sandbox: SandboxInfo } | null>;
}

/**
 * The sandbox mode a proposal runs in, decided at proposal time so that every client shows it before the
 * decision: read-only for read-only producers; else the mode asked for, or the configured one. With
 * "auto", workspace-write, unless the runner the proposal names (`proposed`), or else the one a plain
 * accept would pick here, cannot give it: then full, with the reason recorded. A proposed runner attached
 * to another server (`proposed.sandbox` null: its sandbox is not known here) gets workspace-write. An
 * accept on a runner that cannot give the recorded mode is refused.
 */
export async function sandboxFor(
  config: SpoolConfig,
  runners: DefaultRunner,
  project: ProjectRef,
  producer: { tool: string; readOnly?: boolean | undefined },
  requested: SandboxModeName | undefined,
  proposed?: { name: string; sandbox: SandboxInfo | null },
): Promise<{ mode: SandboxModeName; reason?: string }> {
  if (producer.readOnly) {
    if (requested && requested !== "read-only") throw invalid("sandbox", `the ${producer.tool} tool runs read-only; it cannot run in ${requested}`);
    return { mode: "read-only" };
  }
  const configured = config.sandbox;
  if (requested) return { mode: requested };
  if (configured !== "auto") return { mode: configured };
  const fallback = proposed ?? (await runners.defaultSandbox(project.id));
  if (fallback?.sandbox && !sandboxModes(fallback.sandbox).includes("workspace-write")) {
    return {
      mode: "full",
      reason: `runner "${fallback.name}" has no workspace-write sandbox (${fallback.sandbox.detail}); set "sandbox": "workspace-write" in config.json to refuse such runners instead`,
    };
  }
  return { mode: "workspace-write" };
}
