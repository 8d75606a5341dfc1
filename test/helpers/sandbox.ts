import { spawnSync } from "node:child_process";
import { describe, it } from "vitest";
import { bwrapCommand, PROBE_COMMAND } from "../../src/runners/sandbox/sandbox.js";
import { infraRequired } from "./infra.js";

/** Why bubblewrap cannot sandbox here, or null when it can (scripts/test-infra.sh installs it). */
export function bwrapMissing(): string | null {
  const probe = spawnSync("bwrap", bwrapCommand("/", PROBE_COMMAND), { encoding: "utf8" });
  if (probe.error) return `bwrap is not installed (${probe.error.message}); scripts/test-infra.sh up installs it (apt-get install bubblewrap)`;
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

/** What git runs outside the sandbox when the person next runs git in the project (a prompt's git status): its config, a hook, a .git put in its place. */
export const GIT_WRITES: [string, string][] = [
  ["git-config", "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config"],
  ["git-hook", "echo 'touch /tmp/pwned' > .git/hooks/post-checkout"],
  ["git-moved", "mv .git .git-moved"],
];

/** One shell line trying each write in turn, saying `name=written` or `name=refused` for each. */
export const attempts = (tries: [name: string, write: string][]) =>
  tries.map(([name, write]) => `{ ${write}; } 2>/dev/null && echo "${name}=written" || echo "${name}=refused"`).join("; ");
