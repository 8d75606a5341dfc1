/** What a runner attached by a test says of its sandbox (runner/attach's `sandbox`): every mode, a network of its own. */
export const RUNNER_CLAIM = {
  kind: "bwrap" as const,
  readOnly: true,
  detail: "says so",
  modes: ["read-only" as const, "workspace-write" as const, "full" as const],
  network: "own" as const,
};
