import type { ConnectionHandle } from "../../rpc/connection-context.js";

export type OwnerKind = "runner" | "self";

/**
 * Who may write each open producer right now: one live connection per
 * producer, and the grace timers of producers whose owner went away. The
 * durable half of ownership (the owner's name and resume-token key) is in the
 * producer's log entry; this is the live half, rebuilt by claims after a
 * restart.
 */
export class Owners {
  readonly #owner = new Map<number, { connection: ConnectionHandle; kind: OwnerKind }>();
  readonly #owned = new Map<ConnectionHandle, Set<number>>();
  readonly #grace = new Map<number, NodeJS.Timeout>();

  /** Makes `connection` the producer's owner (ends any grace period and any previous owner's claim). */
  set(producerId: number, connection: ConnectionHandle, kind: OwnerKind): void {
    this.#clearGrace(producerId);
    this.#detach(producerId);
    this.#owner.set(producerId, { connection, kind });
    let set = this.#owned.get(connection);
    if (!set) this.#owned.set(connection, (set = new Set()));
    set.add(producerId);
  }

  /** The producer's live owner: undefined while it has none (its grace period, or after a restart until a claim). */
  ownerOf(producerId: number): { connection: ConnectionHandle; kind: OwnerKind } | undefined {
    return this.#owner.get(producerId);
  }

  /** How many producers the connection owns now (a runner's load). */
  count(connection: ConnectionHandle): number {
    return this.#owned.get(connection)?.size ?? 0;
  }

  isOwner(producerId: number, connection: ConnectionHandle): boolean {
    return this.#owner.get(producerId)?.connection === connection;
  }

  /** The producer finished: nobody owns it any more. */
  forget(producerId: number): void {
    this.#clearGrace(producerId);
    this.#detach(producerId);
  }

  /** The connection is gone: its producers lose their owner (the caller starts their grace). */
  release(connection: ConnectionHandle): { id: number; kind: OwnerKind }[] {
    const ids = [...(this.#owned.get(connection) ?? [])];
    this.#owned.delete(connection);
    return ids.map((id) => {
      const kind = this.#owner.get(id)!.kind;
      this.#owner.delete(id);
      return { id, kind };
    });
  }

  /** After `ms` without a new owner, `expire` runs once. */
  startGrace(producerId: number, ms: number, expire: () => void): void {
    this.#clearGrace(producerId);
    const timer = setTimeout(() => {
      this.#grace.delete(producerId);
      if (!this.#owner.has(producerId)) expire();
    }, ms);
    timer.unref();
    this.#grace.set(producerId, timer);
  }

  stop(): void {
    for (const timer of this.#grace.values()) clearTimeout(timer);
    this.#grace.clear();
  }

  #clearGrace(producerId: number): void {
    clearTimeout(this.#grace.get(producerId));
    this.#grace.delete(producerId);
  }

  #detach(producerId: number): void {
    const previous = this.#owner.get(producerId);
    if (!previous) return;
    this.#owner.delete(producerId);
    const set = this.#owned.get(previous.connection);
    set?.delete(producerId);
    if (set?.size === 0) this.#owned.delete(previous.connection);
  }
}
