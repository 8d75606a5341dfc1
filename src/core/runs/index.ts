import type { z } from "zod";
import type { CompactionNotice, RunEvent, RunOut, RunStateFields, RunStateNotice, ToolNotice } from "../../protocol/common.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { conflict } from "../../rpc/errors.js";
import { type Repositories, UniqueViolation } from "../../store/repositories.js";
import type { LoopRow, RunRow } from "../../store/schema.js";
import type { TurnUsage } from "../../store/usage.js";
import { runView } from "../../store/views.js";
import type { CoreDeps } from "../deps.js";
import { ENTRY, OPEN_RUN, RUN } from "../status.js";
import type { Budgets } from "./budgets.js";
import { RunRates } from "./rates.js";

type Runs = Repositories["runs"];

/**
 * Runs: their status changes (stored, announced as `run/state` and hooked as `run:status` in one place), their
 * loops and history, and the reads the handlers make of them.
 */
export class RunStates {
  /** What a principal may add through runs (limits.runsPerMinute, limits.promptBytesPerHour). */
  readonly rates: RunRates;

  constructor(
    private readonly deps: CoreDeps,
    private readonly budgets: Budgets,
  ) {
    this.rates = new RunRates(deps);
  }

  /** The project's run with this alias, if there is one (`lifecycle.requireRun` throws NOT_FOUND instead). */
  find(project: ProjectRef, alias: string): Promise<RunRow | undefined> {
    return this.deps.repos.runs.findRun(project.id, alias);
  }

  /** The run as it is stored now (as it was, should it be gone). */
  async reload(run: RunRow): Promise<RunRow> {
    return (await this.deps.repos.runs.findRunById(run.id)) ?? run;
  }

  /** The project's runs, newest first. */
  list(project: ProjectRef, filter: Parameters<Runs["listRuns"]>[1]): Promise<RunRow[]> {
    return this.deps.repos.runs.listRuns(project.id, filter);
  }

  /** Runs as the wire has them, each with how many of its proposals wait for a decision (one query for all). */
  async views(rows: readonly RunRow[]): Promise<RunOut[]> {
    const pending = await this.deps.repos.runs.pendingProposals(
      rows.map((r) => r.id),
      ENTRY.proposed,
    );
    // A finished turn that had a proposal rejected did not do what was asked: clients say "rejected", not "done".
    const ended = rows.filter((r) => r.status === RUN.done && r.model !== null).map((r) => r.id);
    const rejected = await this.deps.repos.runs.rejectedInLastLoop(ended, ENTRY.rejected);
    // And one whose last command failed, was cancelled or was cut off did not either: clients say which.
    const last = await this.deps.repos.runs.lastCommandInLastLoop(ended, ENTRY.done);
    const commands = await this.budgets.commands(rows.map((r) => r.id));
    const names = new Map<number, string>();
    for (const id of new Set(rows.map((r) => r.project_id))) names.set(id, (await this.deps.repos.projects.findProjectById(id))?.name ?? "");
    return rows.map((row) => ({
      ...runView(row, pending.get(row.id) ?? 0, rejected.get(row.id) ?? 0, last.get(row.id)),
      spend: this.budgets.spend(row, commands.get(row.id) ?? 0),
      budget: this.budgets.effective(row, names.get(row.project_id) ?? ""),
      paused: row.status === RUN.paused ? ((JSON.parse(row.attributes) as { budgetReached?: RunOut["paused"] }).budgetReached ?? null) : null,
    }));
  }

  /** One run as the wire has it (views). */
  async view(row: RunRow): Promise<RunOut> {
    return (await this.views([row]))[0]!;
  }

  /** The model's token usage of each turn of the run. */
  usage(runId: number): Promise<TurnUsage[]> {
    return this.deps.repos.usage.usageByTurn(runId);
  }

  /** Points the run at another configured model (its next prompt uses it). */
  async setModel(run: RunRow, model: string): Promise<RunRow> {
    await this.deps.repos.runs.updateRun(run.id, { model });
    return { ...run, model };
  }

  /** Stores the run's own budget (null or {}: none of its own). */
  setBudget(run: RunRow, budget: Record<string, number> | null): Promise<void> {
    return this.deps.repos.runs.updateRun(run.id, { budget: budget && Object.keys(budget).length ? JSON.stringify(budget) : null });
  }

  /** Stores the run's attributes as `run` has them. */
  saveAttributes(run: RunRow): Promise<void> {
    return this.deps.repos.runs.updateRun(run.id, { attributes: run.attributes });
  }

  /** A prompt queued as the run's next loop (the agent driver takes it from there). */
  queueLoop(run: RunRow, prompt: string, mode: "ask" | "act"): Promise<LoopRow> {
    return this.deps.repos.loops.insertLoop({ run_id: run.id, prompt, mode, status: RUN.queued });
  }

  /** How many loops of the run are queued or running. */
  openLoops(runId: number): Promise<number> {
    return this.deps.repos.loops.countLoopsIn(runId, OPEN_RUN);
  }

  /** The runs of every project with a model whose loop was in the middle of something (to continue after a restart). */
  openModelRuns(): Promise<number[]> {
    return this.deps.repos.runs.listOpenModelRuns(OPEN_RUN);
  }

  /** A page of the run's conversation with its model, oldest first, after message `afterId`. */
  history(runId: number, page: { afterId: number; limit: number }): ReturnType<Repositories["messages"]["listMessagePage"]> {
    return this.deps.repos.messages.listMessagePage(runId, page);
  }

  /**
   * A name for a run created without an alias: run-N, N counted per project (nothing of other projects shows
   * in it). A number whose name a client already chose as an alias is skipped.
   */
  async freeAlias(project: ProjectRef): Promise<string> {
    for (;;) {
      const alias = `run-${await this.deps.repos.runs.nextRunNumber(project.id)}`;
      if (!(await this.deps.repos.runs.findRun(project.id, alias))) return alias;
    }
  }

  /** Creates a run (idle: done until a prompt queues a loop) and announces it (`run/state` "created"); an alias the project uses is CONFLICT. */
  async create(
    project: ProjectRef,
    input: { alias: string; model: string | null; mode: "ask" | "act"; title?: string | null; createdBy?: string; budget?: Record<string, number> },
  ): Promise<RunRow> {
    const now = Date.now();
    const { createdBy, budget, ...fields } = input;
    try {
      const run = await this.deps.repos.runs.insertRun({
        project_id: project.id,
        ...fields,
        // Who created it: an agent acts only in the runs its principal created (src/core/credentials/principals.ts).
        ...(createdBy !== undefined ? { attributes: JSON.stringify({ createdBy }) } : {}),
        ...(budget && Object.keys(budget).length ? { budget: JSON.stringify(budget) } : {}),
        status: RUN.done,
        created_at: now,
        updated_at: now,
      });
      const notice: z.input<typeof RunStateNotice> = { run: run.alias, status: run.status, turn: run.turn, loop: null, event: "created" };
      this.deps.notifyProject(project.id, "run/state", notice);
      await this.deps.emit("run:created", { project, run });
      return run;
    } catch (error) {
      // Two clients racing for the same alias: the unique constraint decides.
      if (error instanceof UniqueViolation) throw conflict(`Run alias "${input.alias}" is already used in project "${project.name}"`, { run: input.alias });
      throw error;
    }
  }

  /** The oldest loop of the run that has not finished. */
  openLoop(runId: number): Promise<LoopRow | undefined> {
    return this.deps.repos.loops.firstLoopIn(runId, OPEN_RUN);
  }

  /**
   * Sets a run's status and tells every connection of the project what happened (`event`, plus `extra`
   * fields), naming the loop the event is about: `about`, or by default the oldest open loop.
   */
  async change(
    run: RunRow,
    project: ProjectRef,
    status: number,
    event: RunEvent,
    extra: RunStateFields = {},
    about?: Pick<LoopRow, "seq" | "status"> | null,
  ): Promise<RunRow> {
    const now = Date.now();
    await this.deps.repos.runs.updateRun(run.id, { status, updated_at: now });
    const next = { ...run, status, updated_at: now };
    const loop = about === undefined ? await this.openLoop(run.id) : about;
    const notice: z.input<typeof RunStateNotice> = {
      run: run.alias,
      status,
      turn: next.turn,
      loop: loop ? { seq: loop.seq, status: loop.status } : null,
      event,
      ...extra,
    };
    this.deps.notifyProject(project.id, "run/state", notice);
    if (run.status !== status) await this.deps.emit("run:status", { project, run: next, previous: run.status });
    return next;
  }

  /** Gives an untitled run its title from a prompt: the first line with text, cut to 80 characters. */
  async titleFrom(run: RunRow, prompt: string): Promise<void> {
    if (run.title) return;
    const line = prompt
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l.length > 0);
    if (!line) return;
    const title = line.length > 80 ? `${line.slice(0, 79)}…` : line;
    await this.deps.repos.runs.updateRun(run.id, { title });
    run.title = title;
  }

  async setLoop(loop: LoopRow, status: number): Promise<void> {
    const finished = !OPEN_RUN.includes(status);
    await this.deps.repos.loops.setLoopStatus(loop.id, status, finished);
    loop.status = status;
  }

  /** Ends every open loop of a run with `status` (abort). */
  async finishOpenLoops(runId: number, status: number): Promise<number> {
    return this.deps.repos.loops.finishLoopsIn(runId, OPEN_RUN, status);
  }

  /** `run/progress`: the model's text as it streams. */
  progress(project: ProjectRef, delta: { run: string; turn: number; loop: number; delta: string }): void {
    this.deps.notifyProject(project.id, "run/progress", delta);
  }

  /** `run/compaction`: the conversation is being compacted (started, the summary as it streams, completed or failed). */
  compaction(project: ProjectRef, notice: z.input<typeof CompactionNotice>): void {
    this.deps.notifyProject(project.id, "run/compaction", notice);
  }

  /** `run/tool`: one of the model's tool calls started, waits on its proposal, or was answered. */
  tool(project: ProjectRef, notice: z.input<typeof ToolNotice>): void {
    this.deps.notifyProject(project.id, "run/tool", notice);
  }

  /** Why a loop failed, as the entry `error://turn_N/loop_K` (written again if the same loop fails twice). */
  async recordError(run: RunRow, loop: LoopRow, message: string): Promise<void> {
    const now = Date.now();
    await this.deps.repos.entries.upsertEntry({
      run_id: run.id,
      path: `error://turn_${run.turn}/loop_${loop.seq}`,
      scheme: "error",
      turn: run.turn,
      status: ENTRY.failed,
      attributes: JSON.stringify({ loop: loop.seq, model: run.model }),
      body: message,
      created_at: now,
      updated_at: now,
    });
  }

  isOpen(run: Pick<RunRow, "status">): boolean {
    return OPEN_RUN.includes(run.status);
  }

  /**
   * Whether a run has something left to stop even when its loop ended: a command still running (one started
   * in the background outlives its turn) or a proposal still waiting for a person.
   */
  async hasOpenWork(runId: number): Promise<boolean> {
    const running = await this.deps.repos.entries.listEntries(runId, { status: ENTRY.streaming, limit: 1 });
    if (running.length > 0) return true;
    // Accepted and waiting in its pool's queue: cancelled like a running one.
    if ((await this.deps.repos.entries.listEntries(runId, { status: ENTRY.queued, limit: 1 })).length > 0) return true;
    return (await this.deps.repos.entries.listLogsIn(runId, [ENTRY.proposed])).length > 0;
  }
}
