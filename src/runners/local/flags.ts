import type { BackendRow, FlagValues } from "../flags.js";
import type { ContainerChoice } from "./container.js";
import { LocalBackend } from "./local.js";

/** `--contain`: auto (default), pid-namespace or none. */
function containChoice(raw: FlagValues[string]): ContainerChoice {
  if (raw === undefined) return "auto";
  if (raw === "auto" || raw === "pid-namespace" || raw === "none") return raw;
  throw new Error(`--contain must be auto, pid-namespace or none, got "${String(raw)}"`);
}

/** The local backend's row of src/runners/backends.ts: commands on the runner's own machine. */
export const LOCAL = {
  flags: {
    contain: {
      type: "string",
      arg: "MODE",
      help: `what holds each command's processes, killed on cancel,
timeout, the command's end and the runner's: auto (a
cgroup v2 per command where this user may create one,
else a PID namespace), pid-namespace, none
                                              [auto]`,
      heading: " local:",
    },
  },
  build: async (values, common) =>
    new LocalBackend({
      killGraceMs: common.killGraceMs,
      processes: common.processes,
      sandbox: common.sandbox,
      container: containChoice(values.contain),
      ...(common.root ? { defaultCwd: common.root } : {}),
    }),
} as const satisfies BackendRow;
