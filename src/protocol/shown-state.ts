import type { z } from "zod";
import { keyWords } from "./pool-keys.js";
import type { RunnerInfo } from "./runner.js";
import type { SandboxModeName } from "./sandbox.js";
import { RUN, runStatusWord } from "./status.js";
import type { RunView } from "./views-schemas.js";

/*
 * The state of a run and of a runner as every client shows it (`spool runs`, `spool show`, `spool runners`,
 * the web page, `spool acp`, `spool mcp`), derived here once from the typed views the server sends, so no two
 * clients tell a person different things. Plain TypeScript with no Node imports and no zod at run time: the
 * web page bundles it.
 */

/**
 * What a person reads for a run: `waiting` for a decision, `queued`, `running`, `paused` (at a budget: a person
 * raises it or stops the run), `idle` (fed by hand), `done` (it finished, and its last command, if it ran one,
 * succeeded), `rejected` (a proposal made since its latest prompt was rejected: not what was asked), `cancelled` or
 * `interrupted` (its last command was cancelled, or cut off by its runner), `aborted`, `failed` (the run failed, or
 * its last command exited non-zero or was killed).
 */
export type RunState = "waiting" | "queued" | "running" | "paused" | "idle" | "done" | "rejected" | "cancelled" | "interrupted" | "aborted" | "failed";

/**
 * A run's state. `pending` is how many of its proposals wait for a decision: the run view's own count
 * (`run/list`, `run/get`), or what a client counts from `run/proposal` and `run/resolved` when it follows
 * them live. A run with one is `waiting`, whoever proposed it (its model, or a client such as an MCP agent
 * on a run with no model). A run at 202 without one is `running`: its turn waits on a command already
 * accepted, not on a person. A run with no model at 200 is `idle` (clients feed it by hand), not finished.
 */
export function runState(run: Pick<RunView, "model" | "status" | "pending" | "rejected" | "lastCommand">, pending: number = run.pending): RunState {
  if (pending > 0) return "waiting";
  switch (run.status) {
    case RUN.queued:
      return "queued";
    case RUN.running:
    case RUN.waiting:
      return "running";
    case RUN.paused:
      return "paused";
    case RUN.done:
      if (run.model === null) return "idle";
      if ((run.rejected ?? 0) > 0) return "rejected";
      return run.lastCommand === undefined || run.lastCommand === "succeeded" ? "done" : run.lastCommand;
    case RUN.aborted:
      return "aborted";
    case RUN.failed:
      return "failed";
  }
  // A status this client does not know: the word the status table has for it (`status N`).
  return runStatusWord(run.status) as RunState;
}

/** A runner as a person reads it: the facts `runner/list` gives, in the words every client uses. */
export interface RunnerShown {
  /** What `runner/list`'s `state` says: `claiming` (it takes work), `draining` (nothing new; what it runs finishes), `gone` (its name held for it). */
  state: "claiming" | "draining" | "gone";
  /** The embedded runner before its first command: claiming, and its backend starts when it gets one. */
  firstUse: boolean;
  /**
   * The state as one phrase: `claiming`, `claiming (starts on first use)`, `draining` or `gone`; a runner resting after
   * failed starts adds it: `claiming, resting 4s after 3 failed starts`.
   */
  stateWord: string;
  /** Resting after failed starts (`runner/list`'s `resting`, not yet over): it takes no queued command meanwhile. */
  resting: boolean;
  /** Its load: `2 of 4` (running of its capacity), `2` when it has no limit. */
  loadWord: string;
  /** Attached as the project's default (`runner/list`'s `default`). */
  default: boolean;
  /** Not the default, but a plain accept goes to it, as no runner is the default (the embedded one). */
  fallback: boolean;
  /** The sandbox modes it runs commands in, narrowest first. */
  modes: SandboxModeName[];
  /** `default`, `fallback` (plain accepts go to it) or `no`: the default column. */
  defaultWord: "yes" | "fallback" | "no";
  /** The modes as one phrase: `read-only, workspace-write, full`. */
  sandboxWord: string;
  /** A workspace-write command's network there: `own` (outbound only), `shared` (the runner machine's), `none`, or `not said`. */
  networkWord: string;
  /** Who attached it (the principal that owns its name): `runner "ci"`; `the server` for the embedded runner; `not said` from an older server. */
  attachedByWord: string;
  /**
   * Where it runs: the server it is attached to and the machine its commands run on, `myhost:7420, on ci-box`; with the
   * project root somewhere else there, that too: `myhost:7420, on ci-box, project root ~`.
   */
  whereWord: string;
}

type Runner = z.output<typeof RunnerInfo>;

/** The modes a runner gives: its `sandbox.modes`; a runner older than modes gives read-only when it says readOnly, and full. */
export function runnerModes(sandbox: Runner["sandbox"]): SandboxModeName[] {
  return sandbox.modes ?? (sandbox.readOnly ? ["read-only", "full"] : ["full"]);
}

/** A runner's state among the project's runners (`all`, to tell whether it takes plain accepts as no runner is the default). */
export function runnerShown(runner: Runner, all: readonly Runner[], now = Date.now()): RunnerShown {
  const fallback = !runner.default && runner.embedded && !all.some((r) => r.default);
  const modes = runnerModes(runner.sandbox);
  const firstUse = runner.embedded && runner.attachedAt === 0;
  const resting = runner.resting && runner.resting.until > now ? runner.resting : null;
  const failed = resting ? `${resting.failedStarts} failed start${resting.failedStarts === 1 ? "" : "s"}` : "";
  return {
    state: runner.state,
    firstUse,
    stateWord:
      runner.state === "claiming" && firstUse
        ? "claiming (starts on first use)"
        : resting
          ? `${runner.state}, resting ${Math.ceil((resting.until - now) / 1000)}s after ${failed}`
          : runner.state,
    resting: resting !== null,
    loadWord: runner.capacity === null || runner.capacity === undefined ? String(runner.running) : `${runner.running} of ${runner.capacity}`,
    default: runner.default,
    fallback,
    modes,
    defaultWord: runner.default ? "yes" : fallback ? "fallback" : "no",
    sandboxWord: modes.join(", "),
    networkWord: runner.sandbox.network ?? "not said",
    attachedByWord:
      runner.attachedBy === undefined ? "not said" : runner.attachedBy === null ? "the server" : `${runner.attachedBy.role} "${runner.attachedBy.name}"`,
    whereWord: `${runner.server ?? "this server"}, on ${runner.host ?? "a machine it did not name"}${runner.root ? `, project root ${runner.root}` : ""}`,
  };
}

/** A queued command's place, as every client says it: `2nd in line for pool linux, waiting 40s`. */
export function queueWords(queue: { pool: string; position: number; since: number }, now = Date.now()): string {
  const n = queue.position;
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  const s = Math.max(0, Math.round((now - queue.since) / 1000));
  const waited = s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${n}${suffix} in line for ${keyWords(queue.pool)}, waiting ${waited}`;
}
