import type { SpoolClient } from "../../../client/spool-client.js";
import type { SpoolNotifications } from "../../../protocol/notifications.js";
import { ENTRY } from "../../../protocol/status.js";
import { producerOf } from "../../../protocol/views.js";
import { ENDED, endedWords, finishedWords, outcomeWords } from "../../words.js";
import type { Ending } from "./verdict.js";

type Finished = SpoolNotifications["stream/finished"];

/** How long a command's finished line waits for its producer's end once its channels ended. */
const FINISHED_WAIT_MS = 5_000;

/**
 * How the commands `spool act` follows ended, in the words their log entries record (exit code, signal, why it
 * was cancelled or aborted): read once a command's channels ended. A producer can end after its channels (a
 * stopping server closes them, then records the command aborted: server shutting down); its stream/finished
 * then says how, unless the connection closes first.
 */
export class Endings {
  /** stream/finished of followed commands not asked for yet (dropped once asked). */
  readonly #notices = new Map<string, Finished>();
  readonly #waiters = new Map<string, (p: Finished) => void>();
  readonly #closed: Promise<null>;

  constructor(
    private readonly client: SpoolClient,
    followed: (run: string, path: string) => boolean,
  ) {
    client.on("stream/finished", (p) => {
      if (!followed(p.run, p.path)) return;
      const waiter = this.#waiters.get(p.path);
      this.#waiters.delete(p.path);
      if (waiter) waiter(p);
      else this.#notices.set(p.path, p);
    });
    this.#closed = new Promise((resolve) => client.onClose(() => resolve(null)));
  }

  /** How `path` ended, in words and whether it succeeded; `status`: its channels' end, said when nothing better is known. */
  async of(run: string, path: string, status: { status: number; exit_code?: number | null } | undefined): Promise<Ending> {
    const log = await this.client
      .call("entry/list", { run, pattern: path })
      .then((r) => r.entries.find((e) => e.path === path))
      .catch(() => undefined);
    if (log && ENDED.includes(producerOf(log).state)) {
      this.#notices.delete(path);
      return { words: outcomeWords(producerOf(log)), ok: producerOf(log).state === "done" };
    }
    // Bounded: should no word come (nothing else would end the wait), the channels' own end is said.
    const timeout = new Promise<null>((resolve) => setTimeout(resolve, FINISHED_WAIT_MS, null).unref());
    const notice = await Promise.race([this.#ended(path), this.#closed, timeout]);
    this.#waiters.delete(path);
    if (notice) return { words: finishedWords(notice), ok: notice.outcome === "completed" && notice.status === ENTRY.done };
    return status ? { words: endedWords(log, status.status, status.exit_code), ok: status.status === ENTRY.done } : { words: "?", ok: null };
  }

  #ended(path: string): Promise<Finished> {
    return new Promise((resolve) => {
      const known = this.#notices.get(path);
      this.#notices.delete(path);
      if (known) resolve(known);
      else this.#waiters.set(path, resolve);
    });
  }
}
