import { HOME_PRINCIPAL_NAME, type PrincipalRef } from "../protocol/roles.js";
import { SpoolError } from "../rpc/errors.js";
import type { Repositories } from "../store/repositories.js";
import type { EntryRow } from "../store/schema.js";
import { type SearchQuery, SearchQueueFull, type SearchShare, SearchTimedOut } from "../store/search/search.js";
import { compileQuery, regexError } from "../store/search/search-match.js";
import type { CoreDeps } from "./deps.js";
import { HOME_SHARE, shareOf } from "./share-key.js";
import { channelOpen } from "./status.js";
import { replay } from "./streams/replay.js";
import type { Subscription, WatcherHub } from "./streams/watchers.js";

type Stored = Repositories["entries"];
/** Not ended yet: streaming, or queued for a runner (its output is still to come). */
const streaming = (channel: EntryRow) => channelOpen(channel.status);
type Chunks = Repositories["chunks"];

/**
 * The entries of a run and the bytes of their channels, as the handlers read them: found by path, listed, a
 * producer's channels, lines of a streamed entry, a producer's chunks in stored order, and a subscription's replay.
 */
export class Entries {
  /**
   * Lines `line` … `line + count - 1` of a streamed entry within `maxBytes` (the store's own line read, passed on
   * as it is: entry/get and the model view call it for every read).
   */
  readonly readLines: Chunks["readLines"];

  constructor(
    private readonly deps: CoreDeps,
    private readonly watchers: WatcherHub,
  ) {
    this.readLines = deps.repos.chunks.readLines;
  }

  /** The run's entry at `path`, if there is one. */
  find(runId: number, path: string): Promise<EntryRow | undefined> {
    return this.deps.repos.entries.findEntry(runId, path);
  }

  /** The run's entries, oldest first, matching the filter (a glob over the path, a status). */
  list(runId: number, filter: Parameters<Stored["listEntries"]>[1]): Promise<EntryRow[]> {
    return this.deps.repos.entries.listEntries(runId, filter);
  }

  /** The entry with this id (a producer's log entry, from a channel's `producer_id`). */
  findById(id: number): Promise<EntryRow | undefined> {
    return this.deps.repos.entries.findEntryById(id);
  }

  /** The run's log entry whose attribute `key` is `value` (the producer a model's tool call made: `toolCallId`). */
  findLogBy(runId: number, key: string, value: string): Promise<EntryRow | undefined> {
    return this.deps.repos.entries.findLogByAttribute(runId, key, value);
  }

  /** Sets one attribute of an entry (what the model has seen of a producer: `modelSeen`). */
  setAttribute(id: number, key: string, value: unknown): Promise<void> {
    return this.deps.repos.entries.setAttribute(id, key, value);
  }

  /**
   * A producer's channels once none is streaming, or as they are after `ms` or on abort. Waits for the channels'
   * end (here or on another server), never on a timer that reads the store.
   */
  async settled(logId: number, ms: number, signal?: AbortSignal): Promise<EntryRow[]> {
    const deadline = Date.now() + ms;
    let channels = await this.deps.repos.entries.listChannels(logId);
    while (channels.some(streaming) && Date.now() < deadline && !signal?.aborted) {
      const wait = this.watchers.signals.arm(
        channels.map((c) => c.id),
        deadline - Date.now(),
        { signal, data: false },
      );
      // Read again once armed: an end between the first read and the arming is not missed.
      channels = await this.deps.repos.entries.listChannels(logId);
      if (!channels.some(streaming)) {
        wait.cancel();
        break;
      }
      if ((await wait.changed) === null) break;
      channels = await this.deps.repos.entries.listChannels(logId);
    }
    return channels;
  }

  /**
   * A wait for the next chunk or end of these channels (`data: false`: their end only), armed now: arm, read the
   * store, then await `changed` (what happened, or null after `ms` or on abort).
   */
  nextChange(channels: readonly EntryRow[], ms: number, options: { signal?: AbortSignal | undefined; data?: boolean } = {}) {
    return this.watchers.signals.arm(
      channels.map((c) => c.id),
      ms,
      options,
    );
  }

  /** A producer's data channels (its log entry's id), by channel number. */
  channels(logId: number): Promise<EntryRow[]> {
    return this.deps.repos.entries.listChannels(logId);
  }

  /** The data channels of each of these producers, by log entry id (one query for all; a producer with none is absent). */
  async channelsByLog(logIds: readonly number[]): Promise<Map<number, EntryRow[]>> {
    const byLog = new Map<number, EntryRow[]>();
    for (const c of await this.deps.repos.entries.listChannelsOf(logIds)) {
      if (c.producer_id !== null) byLog.set(c.producer_id, [...(byLog.get(c.producer_id) ?? []), c]);
    }
    return byLog;
  }

  /** The chunks of these channels in the order they were stored, within `maxBytes` (a command's transcript). */
  readInOrder(channelIds: readonly number[], maxBytes: number): ReturnType<Chunks["readInOrder"]> {
    return this.deps.repos.chunks.readInOrder(channelIds, maxBytes);
  }

  /**
   * What a search of `path` reads: a channel, or a command's output channels (its log path; typed input left out).
   * Throws NOT_FOUND for no such entry and INVALID_PARAMS for an entry that is not output.
   */
  async searchTarget(runId: number, path: string): Promise<{ row: EntryRow; channels: EntryRow[] }> {
    const row = await this.find(runId, path);
    if (!row) throw new SpoolError("NOT_FOUND", `Entry "${path}" not found`, { path });
    if (row.scheme === "log") return { row, channels: (await this.channels(row.id)).filter((c) => c.channel !== 0) };
    if (row.streamed) return { row, channels: [row] };
    throw new SpoolError("INVALID_PARAMS", `${row.path} is not a command's output: search a channel (sh://…) or a command's log path`, { path: row.path });
  }

  /** Why `pattern` is no regular expression a search takes (RE2's syntax: no backreferences or lookaround), or null. */
  patternError(pattern: string, ignoreCase = false): string | null {
    return regexError(pattern, ignoreCase);
  }

  /**
   * Whether a line holds a pattern, as entry/search decides (a regular expression in linear time: V8's engine with its
   * linear-time fall-back), for searches of text that is not stored output (a run's conversation).
   */
  lineTest(query: { pattern: string; regex: boolean; ignoreCase: boolean }): (line: string) => boolean {
    const compiled = compileQuery(query);
    return compiled ? (line) => compiled.test(line) : (line) => line.includes(query.pattern);
  }

  /**
   * Lines of these channels (one, or a command's output channels merged in stored order) that hold a pattern, searched
   * in a worker thread within the configured budget (limits.searchBudgetMs), in the turn of `by`'s share of the pool
   * (its principal's, with the credentials minted under it; none named: the server's own).
   */
  async search(channelIds: readonly number[], query: SearchQuery, signal?: AbortSignal, by?: PrincipalRef): ReturnType<Chunks["search"]> {
    const { searchBudgetMs: budgetMs, maxSearchesPerPrincipal, homeReserve } = this.deps.config.limits;
    const share = by === undefined ? undefined : await this.#searchShare(by, maxSearchesPerPrincipal, homeReserve);
    try {
      return await this.deps.repos.chunks.search(channelIds, query, budgetMs, signal, share);
    } catch (error) {
      if (error instanceof SearchTimedOut)
        throw new SpoolError(
          "LIMIT_EXCEEDED",
          `the search passed its time budget of ${budgetMs} ms without getting past line ${query.fromLine}: search plain text, or a simpler pattern`,
          {
            budgetMs,
            fromLine: query.fromLine,
          },
        );
      if (error instanceof SearchQueueFull)
        throw new SpoolError(
          "LIMIT_EXCEEDED",
          `too many searches at once: ${error.message}`,
          error.limit ? { limit: error.limit, bound: maxSearchesPerPrincipal } : {},
        );
      throw error;
    }
  }

  /** The share of the pool a principal's searches take turns in: its principal's (the home's keeps the reserve). */
  async #searchShare(by: PrincipalRef, bound: number, reserve: number): Promise<SearchShare> {
    if (by.name === HOME_PRINCIPAL_NAME) return { key: HOME_SHARE, name: by.name, bound: null, reserve };
    const row = await this.deps.repos.principals.findLivePrincipal(by.name);
    return { key: row ? shareOf(row) : `name:${by.name}`, name: `"${by.name}"`, bound, reserve: 0 };
  }

  /** Sends a new subscription the chunks stored after each of its channels' `after`, then hands it to live delivery (streams/replay.ts). */
  replay(subscription: Subscription): Promise<void> {
    return replay(this.deps.repos, this.watchers, subscription, this.deps.config.limits.maxWatcherBufferBytes);
  }
}
