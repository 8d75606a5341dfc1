import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * A young-generation collection after every `everyBytes` of binary frames received. Each 64 KiB chunk a runner
 * sends arrives in ArrayBuffers of its own (the socket's reads, ws's frame), outside V8's heap: they are freed
 * only when a collection finds their small JS objects dead, and with 2 MiB semi-spaces a chunk allocates so
 * little on the heap that ~100 chunks (15-30 MB of buffers) go by between scavenges. V8 then counts those bytes
 * against the old generation's limit and runs a full collection every few hundred milliseconds that frees
 * nothing of its own. A scavenge per 2 MB received frees the buffers while they are young, for ~1 ms
 * (bench/history/README.md, "what makes the peak": 99-100 MB at the peak ingesting 1 GB instead of 106, and fewer
 * full collections).
 */
export class Scavenger {
  #since = 0;
  #collect: (() => void) | undefined;

  /** `collect` defaults to V8's own young-generation collection. */
  constructor(
    readonly everyBytes: number,
    collect?: () => void,
  ) {
    this.#collect = collect;
  }

  /** Counts a binary frame's bytes; past the threshold, collects the young generation (synchronously). */
  received(bytes: number): void {
    if (this.everyBytes <= 0) return;
    this.#since += bytes;
    if (this.#since < this.everyBytes) return;
    this.#since = 0;
    (this.#collect ??= youngCollection())();
  }
}

/** V8's `gc({ type: "minor" })` without --expose-gc on the command line (the flag applies to contexts made after it). */
function youngCollection(): () => void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as (options: { type: "minor" }) => void;
  return () => gc({ type: "minor" });
}
