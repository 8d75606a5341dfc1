import { listOpenProducerIds } from "../../store/entries.js";
import type { App } from "../plugin.js";
import { finishProducerById } from "./finish.js";
import type { WatcherHub } from "./watchers.js";

/**
 * Channels left at 102 by a server that died are finished as 499
 * "interrupted" after the grace period, unless their producer streams again
 * before it ends.
 */
export class RestartReaper {
  readonly #touched = new Set<number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly app: App,
    private readonly hub: WatcherHub,
  ) {}

  touched(producerId: number): void {
    this.#touched.add(producerId);
  }

  async start(): Promise<void> {
    const orphans = await listOpenProducerIds(this.app.store.db);
    if (orphans.length === 0) return;
    this.app.log.info(`${orphans.length} producer(s) were streaming when the server stopped; they have ${this.app.config.runnerGraceMs} ms to resume`);
    this.#timer = setTimeout(() => void this.#reap(orphans), this.app.config.runnerGraceMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }

  async #reap(producerIds: number[]): Promise<void> {
    for (const id of producerIds) {
      if (this.#touched.has(id)) continue;
      try {
        await finishProducerById(this.app, this.hub, id, { kind: "aborted", reason: "interrupted" });
      } catch (error) {
        this.app.log.error(`could not finish interrupted producer ${id}`, error);
      }
    }
  }
}
