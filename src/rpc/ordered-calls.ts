import { ORDER_SEP } from "./method.js";

/** The last ordered call with one key: when it was admitted (pipelined calls) and when it, and those before it, finished. */
interface OrderTail {
  pipelined: boolean;
  admitted: Promise<unknown>;
  done: Promise<unknown>;
}

/** The ordered calls of one connection while they run: which waits for which, by order key. */
export class OrderedCalls {
  /** The last ordered call per order key while it runs, grouped by the key's first level (its producer). */
  readonly #tails = new Map<string, Map<string, OrderTail>>();

  /**
   * Runs `work` after every earlier ordered call of this connection whose key
   * is the same as `key`, an ancestor of it or a descendant ("" conflicts with
   * everything). Keys have two levels (producer, channel), so only the calls
   * of the same producer are looked at: the cost does not grow with the
   * number of producers a connection streams. A `pipelined` call after a
   * pipelined call with the same key starts once that one is admitted (its
   * work queued in order, `admit`), not finished; anything else waits for
   * the earlier calls to finish.
   */
  run<T>(key: string, work: (admit: () => void) => Promise<T>, pipelined = false): Promise<T> {
    const sep = key.indexOf(ORDER_SEP);
    const group = sep === -1 ? key : key.slice(0, sep);
    // What this call waits for: promises that never reject (an earlier call's admission or its finish).
    const before: Promise<unknown>[] = [];
    let sameKey: OrderTail | undefined;
    if (key === "") {
      for (const tails of this.#tails.values()) {
        for (const [other, tail] of tails) {
          if (other === key) sameKey = tail;
          else before.push(tail.done);
        }
      }
    } else {
      const mine = this.#tails.get(group);
      if (mine) {
        for (const [other, tail] of mine) {
          if (other === key) sameKey = tail;
          else if (other === group || key === group) before.push(tail.done);
        }
      }
      const unkeyed = this.#tails.get("");
      if (unkeyed) for (const tail of unkeyed.values()) before.push(tail.done);
    }
    if (sameKey) before.push(pipelined && sameKey.pipelined ? sameKey.admitted : sameKey.done);
    let admit!: () => void;
    const admitted = new Promise<void>((resolve) => (admit = resolve));
    const waited = before.length === 0 ? Promise.resolve() : before.length === 1 ? before[0]! : Promise.all(before);
    const next = waited.then(() => work(admit));
    // Admitted whatever happened (its outcome is not handed to `admit`: a result that is a thenable is not followed).
    const settled = next.then(
      () => admit(),
      () => admit(),
    );
    const tails = this.#tails.get(group) ?? new Map<string, OrderTail>();
    this.#tails.set(group, tails);
    // Finished when it and every earlier call with its key have: the one entry per key stands for all of them.
    const done: Promise<unknown> = sameKey ? sameKey.done.then(() => settled) : settled;
    // `settled` admits whatever happened, so `admitted` resolves by then at the latest (no race needed).
    const tail: OrderTail = { pipelined, admitted, done };
    void done.then(() => {
      if (tails.get(key) !== tail) return;
      tails.delete(key);
      if (tails.size === 0 && this.#tails.get(group) === tails) this.#tails.delete(group);
    });
    tails.set(key, tail);
    return next;
  }
}
