import type { ProjectRef } from "../../rpc/connection-context.js";
import { SpoolError } from "../../rpc/errors.js";
import type { CoreDeps, ProducerTarget, ResolverOut } from "../deps.js";
import { DEADLINE, DEADLINE_RESOLVER } from "../resolvers.js";
import { ENTRY } from "../status.js";

/** The longest wait one timer takes (2^31 - 1 ms): Node fires a longer one at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** How often every server looks for proposals past their deadline (one another server made, then stopped). */
const SWEEP_MS = 30_000;

/** "30 s", "5 min": the deadline in the reason the model reads. */
function spoken(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 6_000) / 10} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}

/**
 * Deadlines (decisionTimeoutMs): a proposal nobody decided within it is rejected by the lifecycle's `reject`
 * (so the transition table decides whether it still may be), recorded as decided by `deadline`, with a reason
 * the model reads, and announced as `expired`. The time counts from the proposal's stored creation, so a restart
 * (this server's, or another's sharing the database) does not reset it: start() and a sweep find every pending one.
 */
export class Deadlines {
  readonly #timers = new Map<number, NodeJS.Timeout>();
  #sweep: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: CoreDeps,
    /** The lifecycle's reject (the transition table decides whether the proposal still may be). */
    private readonly reject: (project: ProjectRef, target: ProducerTarget, options: { by: string; resolver: ResolverOut; reason: string }) => Promise<unknown>,
  ) {}

  get ms(): number {
    return this.deps.config.decisionTimeoutMs;
  }

  /** The reason a proposal past its deadline is rejected with. */
  reason(): string {
    return `nobody decided within ${spoken(this.ms)} (the server's decisionTimeoutMs), so the deadline rejected it; the command did not run`;
  }

  /** A proposal waits for a decision: its deadline is set. */
  watch(project: ProjectRef, run: string, id: number, path: string, createdAt: number): void {
    if (this.ms <= 0 || this.#timers.has(id)) return;
    this.#arm(project, run, id, path, createdAt);
  }

  /**
   * A timer waits at most MAX_TIMER_MS (Node's cap, 24.8 days: a longer one fires at once): a deadline past it is
   * waited for in steps, and one that fires is checked against the clock before anything is rejected.
   */
  #arm(project: ProjectRef, run: string, id: number, path: string, createdAt: number): void {
    const wait = Math.min(Math.max(0, createdAt + this.ms - Date.now()), MAX_TIMER_MS);
    const timer = setTimeout(() => {
      this.#timers.delete(id);
      if (Date.now() < createdAt + this.ms) return this.#arm(project, run, id, path, createdAt);
      void this.#expire(project, run, path);
    }, wait);
    timer.unref();
    this.#timers.set(id, timer);
  }

  /** It was decided: its deadline is dropped. */
  decided(id: number): void {
    const timer = this.#timers.get(id);
    if (timer) clearTimeout(timer);
    this.#timers.delete(id);
  }

  /** Every proposal pending in the database gets its deadline (after a restart); again every SWEEP_MS. */
  async start(): Promise<void> {
    if (this.ms <= 0) return;
    await this.#scan();
    this.#sweep = setInterval(
      () => void this.#scan().catch((error: unknown) => this.deps.log.warn("deadlines: could not read pending proposals", error)),
      SWEEP_MS,
    );
    this.#sweep.unref();
  }

  stop(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  async #scan(): Promise<void> {
    for (const p of await this.deps.repos.entries.listPendingEverywhere(ENTRY.proposed)) {
      this.watch({ id: p.project_id, name: p.project, root: p.root }, p.run, p.id, p.path, Number(p.created_at));
    }
  }

  async #expire(project: ProjectRef, run: string, path: string): Promise<void> {
    try {
      await this.reject(project, { run, path }, { by: DEADLINE, resolver: DEADLINE_RESOLVER, reason: this.reason() });
      this.deps.log.info(`deadline: rejected ${path}, undecided after ${spoken(this.ms)}`, { principal: DEADLINE, project: project.name, run, path });
    } catch (error) {
      // Decided meanwhile (here or on another server sharing the database): nothing to do.
      if (error instanceof SpoolError && (error.errorName === "CONFLICT" || error.errorName === "NOT_FOUND")) return;
      this.deps.log.error(`deadline: could not reject ${path}`, { project: project.name, run, path, error });
    }
  }
}
