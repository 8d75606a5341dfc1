import type { ServerResponse } from "node:http";
import { type DoorError, DoorFull } from "./errors.js";

/*
 * What /mcp and /acp keep per caller (MCP sessions, MCP 2026-07-28's kept Spool connections, ACP connections), as one
 * kind of table: each entry belongs to a share (the principal whose bounds it counts against: the one that minted
 * the caller's credential, up to the home) and is bounded per share first, then in all, with room above that for the
 * home. Past its share's bound a caller's own least recently used entry makes room (an idle one first); past the
 * table's bound it is refused (DoorFull, 429), and nobody else's entry ends for it, unless the table is a cache
 * (`sharedEviction`: its idle entries are anyone's to drop, as they hold nothing a client knows of). An entry ends
 * when its credential expires, when it is idle too long, and when its principal is revoked.
 */

/** Whose entry it is: the share it counts against, its principal's name (for the refusals), and whether it is the home's (its reserve applies). */
export interface Holder {
  share: string;
  name: string;
  home: boolean;
  /** When its credential expires (ms since the epoch): the entry ends then. Null or absent: never. */
  expiresAt?: number | null | undefined;
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
  /** Whether an entry has requests under way (a busy one ends only when no idle one can, and is never idle). */
  busy(entry: T): boolean;
  lastUsed(entry: T): number;
  /** Ends an entry (it is out of the table already): why, in words for the log. */
  end(entry: T, why: string): void;
  /** Whether a share's busy entries may end to make room for it (else it is refused when all of them are busy). */
  evictBusy: boolean;
  /** A cache: at the table's bound, anyone's least recently used idle entry is dropped to make room. */
  sharedEviction?: boolean;
}

interface Row<T> {
  holder: Holder;
  entry: T;
  /** Ends it when its credential expires. */
  expiry: NodeJS.Timeout | null;
}

/** A place taken for an entry being made: `add` puts it in, `release` gives the place back (once, either way). */
export interface Place<T> {
  add(key: string, entry: T): void;
  release(): void;
}

/** setTimeout's longest wait (about 24.8 days): a credential expiring later ends its entries no later than that. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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

  *values(): IterableIterator<T> {
    for (const row of [...this.#rows.values()]) yield row.entry;
  }

  /** Moves an entry to the most recently used end (a cache hit). */
  touch(key: string): void {
    const row = this.#rows.get(key);
    if (!row) return;
    this.#rows.delete(key);
    this.#rows.set(key, row);
  }

  /** Takes the entry out, without ending it (it ended by itself); false when there was none. */
  delete(key: string): boolean {
    const row = this.#rows.get(key);
    if (!row) return false;
    if (row.expiry) clearTimeout(row.expiry);
    return this.#rows.delete(key);
  }

  /** Takes the entry out and ends it; false when there was none. */
  end(key: string, why: string): boolean {
    const row = this.#rows.get(key);
    if (!row || !this.delete(key)) return false;
    this.options.end(row.entry, why);
    return true;
  }

  /** Ends every entry `predicate` picks (a revoked principal's, say); how many. */
  endWhere(predicate: (entry: T) => boolean, why: string): number {
    let ended = 0;
    for (const [key, row] of [...this.#rows]) if (predicate(row.entry) && this.end(key, why)) ended++;
    return ended;
  }

  /** Ends the entries with nothing under way that were last used more than `idleMs` ago. */
  endIdle(idleMs: number, now = Date.now()): void {
    const { busy, lastUsed } = this.options;
    for (const [key, row] of [...this.#rows]) {
      const idle = now - lastUsed(row.entry);
      if (!busy(row.entry) && idle > idleMs) this.end(key, `idle for ${idle} ms`);
    }
  }

  /** Ends idle entries (endIdle) every `idleMs` (a minute at most) until the timer is cleared. */
  sweepEvery(idleMs: number): NodeJS.Timeout {
    return setInterval(() => this.endIdle(idleMs), Math.min(60_000, idleMs)).unref();
  }

  /** Empties the table (the server stops): the entries it held, not ended (the caller closes them as a stop does). */
  clear(): T[] {
    const entries = [...this.#rows.values()].map((row) => row.entry);
    for (const key of [...this.#rows.keys()]) this.delete(key);
    return entries;
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
      if (idle) this.end(idle[0], "the server holds its most: the least recently used idle one goes");
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
        const expiry =
          holder.expiresAt == null
            ? null
            : setTimeout(() => this.end(key, "its credential expired"), Math.min(Math.max(0, holder.expiresAt - Date.now()), MAX_TIMER_MS)).unref();
        this.#rows.set(key, { holder, entry, expiry });
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
    for (const [key] of ending) this.end(key, `${why}: its least recently used one ends`);
  }

  #lru(rows: [string, Row<T>][]): [string, Row<T>][] {
    return [...rows].sort(([, a], [, b]) => this.options.lastUsed(a.entry) - this.options.lastUsed(b.entry));
  }
}

/** An entry's requests under way (its SSE streams, the POSTs answered on it) and when it was last used. */
export interface OpenRequests {
  open: Set<ServerResponse>;
  lastSeen: number;
}

/** Counts `response` among the entry's requests under way until it closes; past `max` (`limit` names it), 429. */
export function holdOpen(entry: OpenRequests, response: ServerResponse, max: number, what: string, limit: string): void {
  if (entry.open.size >= max) throw new DoorFull(`This ${what} holds ${entry.open.size} requests open already (at most ${max})`, limit, max);
  entry.open.add(response);
  entry.lastSeen = Date.now();
  response.once("close", () => {
    entry.open.delete(response);
    entry.lastSeen = Date.now();
  });
}

/**
 * The entry of this key if the caller's own credential made it; another credential's is not shown to exist: `unknown`
 * is thrown for it as for a key that names nothing.
 */
export function callersEntry<T extends { caller: { credential: string } }>(
  table: PrincipalTable<T>,
  key: string,
  caller: { credential: string },
  unknown: () => DoorError,
): T {
  const entry = table.get(key);
  if (!entry || entry.caller.credential !== caller.credential) throw unknown();
  return entry;
}
