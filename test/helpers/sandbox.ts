import { spawnSync } from "node:child_process";
import { describe, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { bwrapCommand, PROBE_COMMAND } from "../../src/runners/sandbox.js";
import { infraRequired } from "./infra.js";
import { finished } from "./runners.js";

/** Why bubblewrap cannot sandbox here, or null when it can (scripts/test-infra.sh installs it). */
export function bwrapMissing(): string | null {
  const probe = spawnSync("bwrap", bwrapCommand("/", PROBE_COMMAND), { encoding: "utf8" });
  if (probe.error) return `bwrap is not installed (${probe.error.message}); run scripts/test-infra.sh up`;
  if (probe.status !== 0) return `bwrap cannot build its sandbox here: ${probe.stderr.trim()}`;
  return null;
}

/** A describe block that needs bubblewrap on this machine: skipped with the reason without it, failed under SPOOL_TEST_INFRA=required. */
export function describeWithBwrap(name: string, body: () => void): void {
  const missing = bwrapMissing();
  if (missing && infraRequired) {
    describe(name, () =>
      it("needs bubblewrap", () => {
        throw new Error(`SPOOL_TEST_INFRA=required but bubblewrap is missing: ${missing}`);
      }),
    );
  } else if (missing) {
    console.warn(`skipping "${name}": ${missing}`);
    describe.skip(name, body);
  } else describe(name, body);
}

export interface ToolOptions {
  runner?: string;
  sandbox?: "read-only" | "workspace-write" | "full";
  env?: Record<string, string>;
  cwd?: string;
}

/** Proposes `command` with `tool`, accepts it (on `runner`, else the default one) and waits for it to finish. */
export async function runTool(client: SpoolClient, run: string, tool: "sh" | "env", command: string, options: ToolOptions = {}) {
  await client.request("run/create", { alias: run }).catch(() => undefined);
  const { runner, ...rest } = options;
  const { path } = await client.request("proposal/create", { run, tool, command, ...rest });
  const resolved = await client.request("run/resolve", { run, path, decision: "accept", ...(runner ? { runner } : {}) });
  const done = await finished(client, run, { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
  return { ...done, path, out: done.out.toString(), err: done.err.toString() };
}
