import { DoorFull } from "./errors.js";

/*
 * What /mcp and /acp keep per caller (MCP sessions, MCP 2026-07-28's kept Spool connections, ACP connections), as one
 * kind of table: each entry belongs to a share (the principal whose bounds it counts against: the one that minted
 * the caller's credential, up to the home) and is bounded per share first, then in all, with room above that for the
 * home. Past its share's bound a caller's own least recently used entry makes room (an idle one first); past the
 * table's bound it is refused (DoorFull, 429), and nobody else's entry ends for it, unless the table is a cache
 * (`sharedEviction`: its idle entries are anyone's to drop, as they hold nothing a client knows of).
 */

/** Whose entry it is: the share it counts against, its principal's name (for the refusals), and whether it is the home's (its reserve applies). */
export interface Holder {
  share: string;
  name: string;
  home: boolean;
}

export interface TableBounds {
  /** Entries in all (the home goes `reserve` past it). */
  total: number;
  /** Of them, one share's. */
  perShare: number;
  /** Kept for the home above `total`. */
  reserve: number;
}

export interface TableOptions<T> {
  /** What it holds, in words ("MCP sessions"), and the settings that bound it, for the refusals. */
  what: string;
  names: { total: string; perShare: string };
  /** Whether an entry has requests under way (a busy one ends only when no idle one can). */
  busy(entry: T): boolean;
  lastUsed(entry: T): number;
  /** Ends an entry that makes room (it is out of the table already). */
  end(entry: T, why: string): void;
  /** Whether a share's busy entries may end to make room for it (else it is refused when all of them are busy). */
  evictBusy: boolean;
  /** A cache: at the table's bound, anyone's least recently used idle entry is dropped to make room. */
  sharedEviction?: boolean;
}

interface Row<T> {
  holder: Holder;
  entry: T;
}

/** A place taken for an entry being made: `add` puts it in, `release` gives the place back (once, either way). */
export interface Place<T> {
  add(key: string, entry: T): void;
  release(): void;
}

export class PrincipalTable<T> {
  readonly #rows = new Map<string, Row<T>>();
  /** Places taken for entries being made, per share (they count before the entry has a key). */
  readonly #starting = new Map<string, number>();
  #startingAll = 0;

  constructor(
    private readonly bounds: TableBounds,
    private readonly options: TableOptions<T>,
  ) {}

  get size(): number {
    return this.#rows.size;
  }

  get(key: string): T | undefined {
    return this.#rows.get(key)?.entry;
  }

  /** Moves an entry to the most recently used end (a cache hit). */
  touch(key: string): void {
    const row = this.#rows.get(key);
    if (!row) return;
    this.#rows.delete(key);
    this.#rows.set(key, row);
  }

  delete(key: string): boolean {
    return this.#rows.delete(key);
  }

  *entries(): IterableIterator<[string, T, Holder]> {
    for (const [key, row] of [...this.#rows]) yield [key, row.entry, row.holder];
  }

  /** The entries `predicate` picks (a revoked principal's, say). */
  *of(predicate: (entry: T) => boolean): IterableIterator<[string, T]> {
    for (const [key, row] of [...this.#rows]) if (predicate(row.entry)) yield [key, row.entry];
  }

  /**
   * A place for a new entry of `holder`: its share's least recently used entries end past its bound (idle ones first;
   * busy ones only with `evictBusy`); refused (DoorFull) when they cannot, when the share is making as many at once
   * already, or when the table is full (for the home: full past its reserve).
   */
  take(holder: Holder): Place<T> {
    const { total, perShare, reserve } = this.bounds;
    const { what, names } = this.options;
    const starting = this.#starting.get(holder.share) ?? 0;
    if (starting >= perShare)
      throw new DoorFull(
        `${holder.name} and the credentials of its principal are opening ${starting} ${what} at once already; retry`,
        names.perShare,
        perShare,
      );
    const mine = [...this.#rows].filter(([, row]) => row.holder.share === holder.share);
    const excess = mine.length + starting + 1 - perShare;
    if (excess > 0)
      this.#makeRoom(
        mine,
        excess,
        `${holder.name} and the credentials of its principal hold ${mine.length} ${what}, the most for one principal (${names.perShare} ${perShare})`,
      );
    const room = total + (holder.home ? reserve : 0);
    if (this.#rows.size + this.#startingAll >= room && this.options.sharedEviction) {
      const idle = this.#lru([...this.#rows]).find(([, row]) => !this.options.busy(row.entry));
      if (idle) this.#end(idle[0], idle[1], "the server holds its most: the least recently used idle one goes");
    }
    if (this.#rows.size + this.#startingAll >= room)
      throw new DoorFull(`The server holds ${this.#rows.size} ${what}, its most (${names.total} ${total}); retry when one ends`, names.total, total, 5);
    this.#starting.set(holder.share, starting + 1);
    this.#startingAll++;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.#startingAll--;
      const left = (this.#starting.get(holder.share) ?? 1) - 1;
      if (left > 0) this.#starting.set(holder.share, left);
      else this.#starting.delete(holder.share);
    };
    return {
      add: (key, entry) => {
        release();
        this.#rows.set(key, { holder, entry });
      },
      release,
    };
  }

  /** Ends `count` of `mine`, least recently used first, idle before busy (busy only with evictBusy); else refuses. */
  #makeRoom(mine: [string, Row<T>][], count: number, why: string): void {
    const { busy, evictBusy, names } = this.options;
    const ordered = this.#lru(mine).sort(([, a], [, b]) => Number(busy(a.entry)) - Number(busy(b.entry)));
    const ending = ordered.slice(0, count);
    if (ending.length < count || (!evictBusy && ending.some(([, row]) => busy(row.entry))))
      throw new DoorFull(`${why}, each with a request under way; retry when one ends`, names.perShare, this.bounds.perShare);
    for (const [key, row] of ending) this.#end(key, row, `${why}: its least recently used one ends`);
  }

  #lru(rows: [string, Row<T>][]): [string, Row<T>][] {
    return [...rows].sort(([, a], [, b]) => this.options.lastUsed(a.entry) - this.options.lastUsed(b.entry));
  }

  #end(key: string, row: Row<T>, why: string): void {
    this.#rows.delete(key);
    this.options.end(row.entry, why);
  }
}
