import type { Core } from "../../core/index.js";
import { ABORT_RESOLVER } from "../../core/lifecycle/index.js";
import { ENTRY, RUN } from "../../core/status.js";
import type { RunRow } from "../../core/views.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { SpoolError } from "../../rpc/errors.js";

/**
 * run/abort's change of state: the run ends 499 (the reason kept in its attributes), its open loops end, the
 * model call in flight is interrupted here (`interrupt`) and on the server holding the run elsewhere, pending
 * proposals are rejected and running producers cancelled (their runners kill them).
 */
export async function abortRun(
  core: Core,
  project: ProjectRef,
  run: RunRow,
  reason: string,
  interrupt: (runId: number, reason: string) => void,
): Promise<{ run: RunRow; rejected: string[]; cancelled: string[] }> {
  const after = await core.runs.change(
    { ...run, attributes: JSON.stringify({ ...JSON.parse(run.attributes), abortReason: reason }) },
    project,
    RUN.aborted,
    "aborted",
    { reason },
  );
  await core.runs.saveAttributes(after);
  await core.runs.finishOpenLoops(run.id, RUN.aborted);
  interrupt(run.id, reason);
  core.cluster.interruptElsewhere(run.id, reason);
  const rejected: string[] = [];
  const cancelled: string[] = [];
  for (const log of await core.proposals.undecidedOrAccepted(run.id)) {
    const target = { run: run.alias, path: log.path };
    try {
      if (log.status === ENTRY.proposed) {
        await core.lifecycle.reject(project, target, { by: "run/abort", resolver: ABORT_RESOLVER, reason });
        rejected.push(log.path);
      } else if ((await core.lifecycle.cancel(project, target, reason)).changed) {
        cancelled.push(log.path);
      }
    } catch (error) {
      // Someone else decided or finished it a moment ago: nothing left to stop.
      if (!(error instanceof SpoolError && error.errorName === "CONFLICT")) throw error;
    }
  }
  return { run: await core.runs.reload(after), rejected, cancelled };
}
