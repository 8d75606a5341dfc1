import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import { conflict, SpoolError } from "../../rpc/errors.js";
import { producerFromRow } from "../../store/producer-row.js";
import type { Repositories } from "../../store/repositories.js";
import type { EntryRow } from "../../store/schema.js";
import type { CoreDeps } from "../deps.js";
import type { Owners } from "../producers/owners.js";
import { channelPath } from "../producers/slug.js";
import { noChannel, notOwner, requireAccepted, streamClosed } from "../refusals.js";
import { ENTRY } from "../status.js";
import type { WatcherHub } from "../streams/watchers.js";
import { follow, METHOD, producerState, requireLog } from "./stage.js";

/** The channel that holds what clients sent to a producer's stdin. */
export const INPUT_CHANNEL = 0;

/** Where a channel's appends go, kept while it is open. */
interface AppendTarget {
  projectId: number;
  run: string;
  channel: number;
  entryId: number;
  producerId: number;
}

/** The target of (project, run, channel) among those of one path. */
function findTarget(targets: AppendTarget[] | undefined, projectId: number, run: string, channel: number): AppendTarget | undefined {
  if (targets) for (const t of targets) if (t.projectId === projectId && t.run === run && t.channel === channel) return t;
  return undefined;
}

/**
 * append: the hot path, one chunk of a stream to the store. The Lifecycle holds one of these and offers its
 * `append` bound as its own (index.ts), so a chunk reaches it with no call in between; the first chunk of a
 * channel asks the table (stage.ts) and keeps the channel as a target, and the next ones go straight to the store.
 */
export class ChannelAppends {
  /**
   * Channel lookups for appends, by path (the string a chunk's params already hold: no key made per chunk), then
   * (project, run, channel); dropped when the producer finishes.
   */
  readonly #targets = new Map<string, AppendTarget[]>();
  /** The paths of each producer's targets. */
  readonly #targetPaths = new Map<number, string[]>();

  constructor(
    private readonly deps: CoreDeps,
    private readonly owners: Owners,
    readonly watchers: WatcherHub,
  ) {}

  get #repos(): Repositories {
    return this.deps.repos;
  }

  /** append: one chunk to one channel, by the producer's owner only. Costs the same whatever the channel holds. */
  async append(
    caller: ConnectionHandle,
    project: ProjectRef,
    params: { run: string; path: string; channel: number; data: Buffer; seq?: number | undefined },
    /** Called once the chunk is queued for its commit, behind the chunks queued before it. */
    queued?: () => void,
  ): Promise<{ channel: number; seq: number; bytes: number; duplicate: boolean }> {
    let target = findTarget(this.#targets.get(params.path), project.id, params.run, params.channel);
    // The owner of a channel it has written before goes straight to the store; anything else asks the table.
    if (!target || !this.owners.isOwner(target.producerId, caller)) target = await this.#appendTarget(caller, project, params);
    const observer = this.deps.observer;
    const arrived = observer ? performance.now() : 0;
    const appended = this.#repos.chunks.append(target.entryId, params.data, params.seq, ENTRY.streaming);
    queued?.();
    const outcome = await appended;
    switch (outcome.kind) {
      case "closed":
        throw streamClosed(params.channel, params.path, outcome.status);
      case "gap":
        throw new SpoolError("SEQ_GAP", `seq ${params.seq} skips ahead; the next expected is ${outcome.expected}`, { expected: outcome.expected });
      case "mismatch":
        throw conflict(`seq ${outcome.seq} of channel ${params.channel} is stored with other bytes; a retry must resend the same chunk`, { seq: outcome.seq });
      case "duplicate":
        return { channel: params.channel, seq: outcome.seq, bytes: outcome.bytes, duplicate: true };
      case "appended":
        if (observer) observer.appended(params.data.length, (performance.now() - arrived) / 1000);
        this.watchers.publish(target.entryId, outcome.seq, params.data);
        if (observer && this.watchers.watching(target.entryId)) observer.delivered((performance.now() - arrived) / 1000);
        this.deps.bus.chunk(target.entryId, outcome.seq);
        return { channel: params.channel, seq: outcome.seq, bytes: outcome.bytes, duplicate: false };
    }
  }

  /** The channel an append goes to, once the table lets `caller` append there; kept for the next appends while it is open. */
  async #appendTarget(caller: ConnectionHandle, project: ProjectRef, params: { run: string; path: string; channel: number }): Promise<AppendTarget> {
    const { log } = await requireLog(this.#repos, project, params.run, params.path);
    const { state, channels } = await producerState(this.#repos, log);
    const channel = channels.find((c) => c.channel === params.channel);
    if (!channel) throw noChannel(params.run, params.path, params.channel);
    follow(state, "append", this.owners.isOwner(log.id, caller) ? "owner" : "other", (error) =>
      error === "STREAM_CLOSED"
        ? streamClosed(params.channel, params.path, channel.status)
        : error === "NOT_OWNER"
          ? notOwner(params.path, METHOD.append!)
          : noChannel(params.run, params.path, params.channel),
    );
    const target: AppendTarget = { projectId: project.id, run: params.run, channel: params.channel, entryId: channel.id, producerId: log.id };
    const same = this.#targets.get(params.path);
    if (channel.status === ENTRY.streaming && !findTarget(same, project.id, params.run, params.channel)) {
      this.#targets.set(params.path, [...(same ?? []), target]);
      this.#targetPaths.set(log.id, [...(this.#targetPaths.get(log.id) ?? []), params.path]);
    }
    return target;
  }

  /** Drops the producer's targets (it finished, or a connection of another server owns it now). */
  forgetTargets(producerId: number): void {
    for (const path of this.#targetPaths.get(producerId) ?? []) {
      const kept = (this.#targets.get(path) ?? []).filter((t) => t.producerId !== producerId);
      if (kept.length > 0) this.#targets.set(path, kept);
      else this.#targets.delete(path);
    }
    this.#targetPaths.delete(producerId);
  }

  /**
   * open (channel 0): the producer's input channel, created at 102 with the first input (or end of input) a
   * client sends, so the record shows what was typed; it finishes with the producer's other channels.
   * Null when the producer has finished.
   */
  async openInput(log: EntryRow): Promise<EntryRow | null> {
    requireAccepted(log);
    const producer = producerFromRow(log);
    const path = channelPath(producer.tool, log.turn, producer.slug, INPUT_CHANNEL);
    return this.#repos.producers.openChannel(
      log,
      { channel: INPUT_CHANNEL, path, attributes: { command: producer.command, channel: INPUT_CHANNEL, name: "stdin", log: log.path } },
      ENTRY.streaming,
    );
  }
}
