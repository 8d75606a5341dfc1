import type { ControlSignal, TtySize } from "../protocol/runner.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import { conflict, type ErrorName, SpoolError } from "../rpc/errors.js";
import { channelFromRow, producerFromRow } from "../store/producer-row.js";
import type { EntryRow, RunRow } from "../store/schema.js";
import { type ClusterLink, RELAY_TIMEOUT_MS } from "./cluster.js";
import type { CoreDeps, ProducerTarget } from "./deps.js";
import type { Lifecycle } from "./lifecycle/index.js";
import { ENTRY, entryStatusWord } from "./status.js";

/** Controls one producer may have waiting for the ones before it, whatever their size. */
const MAX_QUEUED_CONTROLS = 256;

/** Errors an owner may answer that reach the client as they are; any other answer is reported as UNSUPPORTED with its message. */
const PASSED_ON = new Set<string>(["UNSUPPORTED", "STREAM_CLOSED", "LIMIT_EXCEEDED", "PAYLOAD_TOO_LARGE"]);

/** A terminal's end-of-file character, what `stream/eof` types into a producer that runs under a terminal. */
const CONTROL_D = Buffer.from([4]);

export interface InputResult {
  /** The producer's input channel (channel 0). */
  path: string;
  seq: number;
  bytes: number;
  duplicate: boolean;
}

/**
 * Interactive producers: `stream/input`, `stream/eof`, `stream/signal` and
 * `stream/resize` from any connection of the project, relayed to the
 * producer's live owner (`producer/input`, …), which applies them or refuses
 * (UNSUPPORTED with its reason, STREAM_CLOSED, LIMIT_EXCEEDED). The controls
 * of one producer are applied one at a time in the order they came, within a
 * bound of bytes and calls waiting. Input is stored as channel 0 once its
 * owner took it, so the record of a producer shows what was typed; the
 * lifecycle opens that channel and finishes it with the others.
 */
export class ProducerControls {
  readonly #queues = new Map<number, { tail: Promise<unknown>; bytes: number; calls: number }>();
  /** Per producer named (project, run, path): the lookup of its last control (#open). */
  readonly #lookups = new Map<string, Promise<{ run: RunRow; log: EntryRow }>>();

  constructor(
    private readonly lifecycle: Lifecycle,
    private readonly deps: Pick<CoreDeps, "repos" | "config">,
    private readonly cluster: ClusterLink,
  ) {}

  /** Bytes for the producer's stdin (or terminal). A `seq` already stored with the same bytes is acknowledged without sending it again. */
  async input(project: ProjectRef, target: ProducerTarget, data: Buffer, seq?: number): Promise<InputResult> {
    const limit = this.deps.config.limits.maxInputBytes;
    if (data.length > limit) {
      throw new SpoolError("PAYLOAD_TOO_LARGE", `Input of ${data.length} bytes is over the limit of ${limit}; send it in parts`, {
        limit,
        bytes: data.length,
      });
    }
    const { run, log } = await this.#open(project, target);
    return this.#serially(log.id, data.length, () => this.#input(run, log, data, seq));
  }

  async #input(run: RunRow, log: EntryRow, data: Buffer, seq: number | undefined): Promise<InputResult> {
    const channel = await this.#inputChannel(log);
    if (channelFromRow(channel).eofAt !== null) {
      throw new SpoolError("STREAM_CLOSED", `The input of "${log.path}" was ended with stream/eof`, { status: channel.status, path: channel.path });
    }
    if (seq !== undefined && seq <= channel.last_seq) {
      const [stored] = await this.deps.repos.chunks.readChunksAfter(channel.id, seq - 1, 1);
      if (stored?.seq === seq && Buffer.from(stored.data).equals(data)) return { path: channel.path, seq, bytes: channel.bytes, duplicate: true };
      throw conflict(`input seq ${seq} of "${log.path}" is stored with other bytes; a retry must resend the same input`, { seq });
    }
    const next = channel.last_seq + 1;
    if (seq !== undefined && seq !== next) throw new SpoolError("SEQ_GAP", `seq ${seq} skips ahead; the next expected is ${next}`, { expected: next });
    await this.#relay(log, "producer/input", { run: run.alias, path: log.path, data: data.toString("base64"), seq: next }, "input");
    const outcome = await this.deps.repos.chunks.append(channel.id, data, next, ENTRY.streaming);
    // The owner took the bytes and the producer ended before they were stored (a command that exits on the line it
    // read: its channels closed meanwhile). They were sent: not an error, but channel 0 no longer takes them.
    if (outcome.kind === "closed") return { path: channel.path, seq: next, bytes: channel.bytes + data.length, duplicate: false };
    if (outcome.kind !== "appended") throw conflict(`input seq ${next} of "${log.path}" could not be stored (${outcome.kind})`);
    this.lifecycle.watchers.publish(channel.id, outcome.seq, data);
    return { path: channel.path, seq: outcome.seq, bytes: outcome.bytes, duplicate: false };
  }

  /**
   * Ends the producer's input: its stdin pipe is closed (later input is STREAM_CLOSED; a second eof changes
   * nothing). Under a terminal, which stays open, it types ^D, stored as input like any other.
   */
  async eof(project: ProjectRef, target: ProducerTarget): Promise<{ path: string; changed: boolean }> {
    const { run, log } = await this.#open(project, target);
    if (producerFromRow(log).tty) {
      const typed = await this.#serially(log.id, 1, () => this.#input(run, log, CONTROL_D, undefined));
      return { path: typed.path, changed: true };
    }
    return this.#serially(log.id, 0, async () => {
      const channel = await this.#inputChannel(log);
      if (channelFromRow(channel).eofAt !== null) return { path: channel.path, changed: false };
      await this.#relay(log, "producer/eof", { run: run.alias, path: log.path }, "end of input");
      await this.deps.repos.entries.setAttribute(channel.id, "eof", Date.now());
      return { path: channel.path, changed: true };
    });
  }

  /** Sends a signal to the producer's process group. */
  async signal(project: ProjectRef, target: ProducerTarget, signal: ControlSignal): Promise<{ path: string; signal: ControlSignal }> {
    const { run, log } = await this.#open(project, target);
    await this.#serially(log.id, 0, () => this.#relay(log, "producer/signal", { run: run.alias, path: log.path, signal }, `SIG${signal}`));
    return { path: log.path, signal };
  }

  /** Resizes the producer's terminal; the log's `tty` attribute keeps the size it has now. */
  async resize(project: ProjectRef, target: ProducerTarget, size: TtySize): Promise<{ path: string } & TtySize> {
    const { run, log } = await this.#open(project, target);
    if (!producerFromRow(log).tty) {
      throw new SpoolError("UNSUPPORTED", `"${log.path}" does not run under a terminal; only a proposal made with tty can be resized`, { path: log.path });
    }
    await this.#serially(log.id, 0, async () => {
      await this.#relay(log, "producer/resize", { run: run.alias, path: log.path, cols: size.cols, rows: size.rows }, "a resize");
      await this.deps.repos.entries.setAttribute(log.id, "tty", { cols: size.cols, rows: size.rows });
    });
    return { path: log.path, cols: size.cols, rows: size.rows };
  }

  /**
   * #lookup, one control of a producer after the other in the order they came: its queries may answer out of
   * order (on PostgreSQL each goes to a pooled connection), and each caller enters the producer's queue
   * (#serially) as soon as its lookup is done, before the next lookup starts (a caller's `await` on the promise
   * returned here runs before the next lookup chained to it). So controls are applied, and counted against the
   * bound, in the order they came.
   */
  #open(project: ProjectRef, target: ProducerTarget): Promise<{ run: RunRow; log: EntryRow }> {
    const key = `${project.id}\u0000${target.run}\u0000${target.path}`;
    const before = this.#lookups.get(key);
    const lookup = () => this.#lookup(project, target);
    const opened = before ? before.then(lookup, lookup) : lookup();
    this.#lookups.set(key, opened);
    const done = () => {
      if (this.#lookups.get(key) === opened) this.#lookups.delete(key);
    };
    void opened.then(done, done);
    return opened;
  }

  /** The run and log of an accepted producer that is still running; STREAM_CLOSED once it has finished. */
  async #lookup(project: ProjectRef, target: ProducerTarget): Promise<{ run: RunRow; log: EntryRow }> {
    const { run, log } = await this.lifecycle.requireLog(project, target.run, target.path);
    if (log.status !== ENTRY.done) {
      throw conflict(`"${log.path}" is not running: it is ${log.status === ENTRY.proposed ? "still a pending proposal" : entryStatusWord(log.status)}`, {
        status: log.status,
      });
    }
    const channels = await this.deps.repos.entries.listChannels(log.id);
    if (channels.some((c) => c.status === ENTRY.queued)) {
      throw conflict(`"${log.path}" waits in its pool's queue for a runner: it takes input once a runner runs it`, { status: ENTRY.queued });
    }
    if (!channels.some((c) => c.status === ENTRY.streaming)) throw finished(log, channels);
    return { run, log };
  }

  async #inputChannel(log: EntryRow): Promise<EntryRow> {
    const channel = await this.lifecycle.openInput(log);
    if (channel?.status === ENTRY.streaming) return channel;
    if (channel) throw closed(log.path, channel.status);
    // None opened: the producer finished since the lookup.
    throw finished(log, await this.deps.repos.entries.listChannels(log.id));
  }

  /** Runs the producer's controls one at a time, in order; refuses past the bound of bytes or calls waiting. */
  #serially<T>(producerId: number, bytes: number, work: () => Promise<T>): Promise<T> {
    let queue = this.#queues.get(producerId);
    if (!queue) this.#queues.set(producerId, (queue = { tail: Promise.resolve(), bytes: 0, calls: 0 }));
    const limit = this.deps.config.limits.maxQueuedInputBytes;
    if (queue.bytes + bytes > limit || queue.calls >= MAX_QUEUED_CONTROLS) {
      throw new SpoolError(
        "LIMIT_EXCEEDED",
        `The producer has ${queue.calls} controls (${queue.bytes} bytes of input) on their way to its owner; wait for them (limits.maxQueuedInputBytes is ${limit})`,
        { limit },
      );
    }
    queue.bytes += bytes;
    queue.calls++;
    const result = queue.tail.then(work);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    queue.tail = settled;
    void settled.then(() => {
      queue.bytes -= bytes;
      queue.calls--;
      if (queue.calls === 0 && this.#queues.get(producerId) === queue) this.#queues.delete(producerId);
    });
    return result;
  }

  /** Asks the producer's live owner to apply a control; its refusal comes back as the caller's error. */
  async #relay(log: EntryRow, method: string, params: Record<string, unknown>, what: string): Promise<void> {
    const owner = this.lifecycle.ownerOf(log.id);
    const { runner } = producerFromRow(log);
    const who = runner === "self" ? 'the client that accepted it with runner "self"' : `runner "${String(runner)}"`;
    // The owner may be connected to another server sharing the database: that server relays it.
    const elsewhere = owner ? null : await this.cluster.ownerServer(log.id);
    if (!owner && elsewhere === null) {
      throw new SpoolError("NO_RUNNER", `"${log.path}" has no connected owner now (${who} went away and may come back); try again`, {
        path: log.path,
        retriable: true,
      });
    }
    try {
      if (owner) await owner.connection.request(method, params, RELAY_TIMEOUT_MS);
      else await this.cluster.requestControl(elsewhere!, log.id, method, params);
    } catch (error) {
      const { code, message, data } = error as { code?: unknown; message?: unknown; data?: { code?: unknown } };
      const said = typeof message === "string" ? message : String(error);
      if (code === -32601) throw new SpoolError("UNSUPPORTED", `${who} does not take ${what} (it does not handle ${method})`, { path: log.path });
      if (typeof data?.code === "string" && PASSED_ON.has(data.code)) {
        throw new SpoolError(data.code as ErrorName, `${who} refused ${what}: ${said}`, { path: log.path });
      }
      if (/connection closed/.test(said)) {
        throw new SpoolError("NO_RUNNER", `${who} went away before it took ${what}; try again`, { path: log.path, retriable: true });
      }
      if (/timeout/i.test(said)) throw new SpoolError("NO_RUNNER", `${who} did not take ${what} within ${RELAY_TIMEOUT_MS} ms`, { path: log.path });
      throw new SpoolError("UNSUPPORTED", `${who} could not apply ${what}: ${said}`, { path: log.path });
    }
  }
}

const closed = (path: string, status: number) => new SpoolError("STREAM_CLOSED", `"${path}" has finished: ${entryStatusWord(status)}`, { status });
/** A finished producer's STREAM_CLOSED: its status is its output channels' (an accepted log's stays at done). */
const finished = (log: EntryRow, channels: readonly EntryRow[]) => closed(log.path, channels[0]?.status ?? log.status);
