/**
 * The principals this server knows were revoked lately (by a revocation here, or heard from another server), so that
 * a proposal its principal's handler stores after the revocation read the waiting ones withdraws itself (propose.ts):
 * only a name on this list costs a proposal a look at the store. A revocation is an admin's act: the list holds the
 * last MAX_NAMES names, each for KEEP_MS, long past any handler still under way.
 */
const KEEP_MS = 10 * 60_000;
const MAX_NAMES = 1_000;

export class RecentRevocations {
  readonly #at = new Map<string, number>();

  add(name: string, now = Date.now()): void {
    this.#at.delete(name);
    this.#at.set(name, now);
    // Oldest first (a Map keeps insertion order): what has aged out, and what is past the bound.
    for (const [old, at] of this.#at) {
      if (this.#at.size <= MAX_NAMES && now - at < KEEP_MS) break;
      this.#at.delete(old);
    }
  }

  has(name: string, now = Date.now()): boolean {
    const at = this.#at.get(name);
    return at !== undefined && now - at < KEEP_MS;
  }
}
