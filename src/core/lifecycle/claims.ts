import { serves } from "../runners/pools.js";
import type { AttachedRunner } from "../runners/registry.js";
import type { RunnerClaims, Stage } from "./stage.js";
import { take } from "./take.js";

/** How often a server looks at the queues for its free runners besides being told (a lost notice costs this long at most). */
export const QUEUE_SWEEP_MS = 5_000;

/**
 * A runner's rest after a start that failed, doubled at each one in a row up to REST_MAX_MS. A runner that cannot
 * start anything (its engine gone, its root removed) otherwise took the queue's commands one after another and failed
 * every one, the moment each failure freed its slot, while the pool's other runners waited for work; resting, it fails
 * one command per rest and the others take the rest of the queue.
 */
export const REST_FIRST_MS = 1_000;
export const REST_MAX_MS = 60_000;

/*
 * When runners take queued commands: a runner with room looks at the queues it serves when it attaches, when a
 * command of its ends (a slot frees), when it stops draining, and when a command is queued for one of its pools (here,
 * or on another server: the bus says so); and every QUEUE_SWEEP_MS, in case a notice was lost. One look at a time
 * per runner, taking while it has room and something it may take waits.
 */
export class Claims implements RunnerClaims {
  /** Runners looking now; true: woken again meanwhile (look once more when done). */
  readonly #looking = new Map<AttachedRunner, boolean>();
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly stage: Stage) {}

  /** Commands the runner may take now: its capacity less what it runs and what is on its way to it; 0 while it drains or is gone. */
  room(runner: AttachedRunner): number {
    if (runner.draining || runner.connection.closed || this.stage.runners.get(runner.projectId, runner.name) !== runner) return 0;
    if (runner.capacity === null) return Number.POSITIVE_INFINITY;
    return runner.capacity - this.stage.owners.count(runner.connection) - runner.reserved;
  }

  /** The runner's load: what it runs (and what is on its way to it). */
  load(runner: AttachedRunner): number {
    return this.stage.owners.count(runner.connection) + runner.reserved;
  }

  /** The runner looks at its queues (once it is done looking, if it is already). */
  wake(runner: AttachedRunner): void {
    if (this.#looking.has(runner)) {
      this.#looking.set(runner, true);
      return;
    }
    if (this.room(runner) <= 0 || this.resting(runner)) return;
    this.#looking.set(runner, false);
    void this.#look(runner)
      .catch((error: unknown) =>
        this.stage.deps.log.warn(`runner ${runner.name}: could not take queued work: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => {
        const again = this.#looking.get(runner) === true;
        this.#looking.delete(runner);
        if (again) this.wake(runner);
      });
  }

  /** A command was queued in `pool` (null: any queue) of the project: its runners here with room look. */
  wakeProject(projectId: number, pool: string | null): void {
    for (const runner of this.stage.runners.list(projectId)) if (pool === null || serves(this.stage.deps.config, runner, pool)) this.wake(runner);
  }

  resting(runner: AttachedRunner): boolean {
    return runner.restingUntil > Date.now();
  }

  failedStart(runner: AttachedRunner): number {
    runner.failedStarts++;
    const ms = Math.min(REST_FIRST_MS * 2 ** Math.min(runner.failedStarts - 1, 16), REST_MAX_MS);
    runner.restingUntil = Date.now() + ms;
    // It looks at its queues again once rested (the sweep would, within QUEUE_SWEEP_MS).
    setTimeout(() => this.wake(runner), ms + 1).unref();
    return ms;
  }

  started(runner: AttachedRunner): void {
    runner.failedStarts = 0;
    runner.restingUntil = 0;
  }

  async #look(runner: AttachedRunner): Promise<void> {
    while (this.room(runner) > 0 && !this.resting(runner)) {
      // Woken from here on: this look sees what woke it.
      this.#looking.set(runner, false);
      if (!(await take(this.stage, runner))) return;
    }
  }

  /** Looks every QUEUE_SWEEP_MS for queued commands some free runner here may take. */
  start(everyMs = QUEUE_SWEEP_MS): void {
    this.#timer ??= setInterval(() => void this.#sweep(), everyMs);
    this.#timer.unref();
  }

  async #sweep(): Promise<void> {
    try {
      const free = [...this.stage.runners.attached()].filter((r) => !r.embedded && this.room(r) > 0 && !this.resting(r));
      if (free.length === 0) return;
      const queued = await this.stage.deps.repos.queue.queuedProjects();
      const projects = new Set(queued.map((q) => q.project_id));
      for (const runner of free) if (projects.has(runner.projectId)) this.wake(runner);
    } catch (error) {
      this.stage.deps.log.warn(`could not look at the runner queues: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
