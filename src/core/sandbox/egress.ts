import type { SpoolConfig } from "../../config/config.js";
import { coversEgress, type EgressFact, egressRules } from "../../protocol/egress.js";
import type { SandboxModeName } from "../../protocol/sandbox.js";
import { invalid } from "../refusals.js";

/**
 * A proposal's network allowlist (SPEC §7 Runners, "Sandbox modes", network `allowlist`), decided at proposal time so
 * every client shows it: the project's list (config.json `egress`: the project's own, else every project's), and the
 * hosts the proposal asks for that the list does not cover already. None: no list and nothing asked (the network is
 * what sandboxNetwork says). Only workspace-write commands have one; asking in another mode is INVALID_PARAMS.
 */
export function egressFor(config: SpoolConfig, project: string, mode: SandboxModeName, asked: readonly string[] | undefined): EgressFact | null {
  const listed = config.egress.projects[project] ?? config.egress.allow;
  if (asked && asked.length > 0 && mode !== "workspace-write")
    throw invalid("allow_hosts", `only a workspace-write command has a network allowlist; this one runs in ${mode}`);
  if (mode !== "workspace-write") return null;
  if (listed === null && (!asked || asked.length === 0)) return null;
  const hosts = egressRules(listed ?? []).map((rule) => rule.text);
  const beyond = egressRules(asked ?? [])
    .map((rule) => rule.text)
    .filter((entry) => !coversEgress(hosts, [entry]));
  return { hosts: [...new Set(hosts)], asked: [...new Set(beyond)] };
}
