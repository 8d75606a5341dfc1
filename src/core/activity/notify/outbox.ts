import type { Logger } from "../../../logger.js";
import { NotifyBody } from "../../../protocol/notify-body.js";
import type { ClaimedDelivery } from "../../../store/notify.js";
import type { Repositories } from "../../../store/repositories.js";
import type { NotifyTargetRow } from "../../../store/schema.js";
import { deliveryId, eventBody } from "./payload.js";
import { render } from "./render.js";

/*
 * The outbox's sender: claims due deliveries (a lease, so servers sharing the database never send one row at
 * the same time), POSTs each with a time limit, deletes it once the receiver answered 2xx, else releases it to be
 * tried again after a backoff (1 s, 2 s, 4 s … capped at 5 min) until a day has passed. Nothing on a proposal's
 * path waits for it: a proposal only inserts rows, then pokes it.
 */

export const DELIVERY_TIMEOUT_MS = 10_000;
/** How long a claim holds a row: an attempt's time limit and some room; a server that died holding it lets go then. */
const LEASE_MS = DELIVERY_TIMEOUT_MS + 5_000;
const MAX_IN_FLIGHT = 8;
const POLL_MS = 1_000;
const FIRST_RETRY_MS = 1_000;
const MAX_BACKOFF_MS = 5 * 60_000;
export const RETRY_FOR_MS = 24 * 60 * 60_000;

/** The wait before attempt `attempts + 1`. */
export const backoff = (attempts: number) => Math.min(MAX_BACKOFF_MS, FIRST_RETRY_MS * 2 ** Math.max(0, Math.min(attempts - 1, 20)));

/** What one POST came to. */
export interface Attempt {
  ok: boolean;
  status: number | null;
  error: string | null;
}

/** POSTs one rendered delivery, within `DELIVERY_TIMEOUT_MS` or until `signal`; never throws. */
export async function post(target: Pick<NotifyTargetRow, "url" | "secret" | "format">, payload: NotifyBody, signal?: AbortSignal): Promise<Attempt> {
  const { body, headers } = render(target.format, payload, target.secret);
  const timeout = AbortSignal.timeout(DELIVERY_TIMEOUT_MS);
  try {
    const response = await fetch(target.url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    // The answer's body is not read (a receiver could send any amount).
    await response.body?.cancel().catch(() => undefined);
    return response.ok ? { ok: true, status: response.status, error: null } : { ok: false, status: response.status, error: `HTTP ${response.status}` };
  } catch (error) {
    const reason = timeout.aborted ? `no answer within ${DELIVERY_TIMEOUT_MS} ms` : signal?.aborted ? "server stopping" : describe(error);
    return { ok: false, status: null, error: reason };
  }
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | null)?.cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}

export class OutboxSender {
  readonly #inFlight = new Map<number, Promise<void>>();
  /**
   * Targets that failed rest: none of their deliveries is tried until `until`, which doubles with each failed
   * wave (as a row's backoff does), so a receiver that is down costs a few attempts a period, not one per delivery.
   */
  readonly #resting = new Map<number, { failures: number; until: number }>();
  /** Targets with a probe in flight (one delivery tried after a failure). */
  readonly #probes = new Set<number>();
  readonly #stop = new AbortController();
  #timer: NodeJS.Timeout | null = null;
  #passing = false;
  #again = false;

  constructor(
    private readonly repos: Repositories,
    private readonly log: Logger,
    private readonly target: (id: number) => Promise<NotifyTargetRow | undefined>,
  ) {}

  start(): void {
    this.poke();
  }

  /**
   * Deliveries for these targets were queued: looked for at once, unless every one of them rests or no attempt
   * could start now (the next poll, or a slot coming free, finds them).
   */
  queued(targets: readonly number[]): void {
    const now = Date.now();
    if (this.#inFlight.size >= MAX_IN_FLIGHT || targets.every((t) => (this.#resting.get(t)?.until ?? 0) > now)) return;
    this.poke();
  }

  /** Looks for due deliveries now, and again every POLL_MS (retries, other servers' rows). */
  poke(): void {
    if (this.#stop.signal.aborted) return;
    if (this.#passing) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#passing = true;
    void this.#pass()
      .catch((error: unknown) => this.log.warn(`notify: could not read the outbox: ${describe(error)}`))
      .finally(() => {
        this.#passing = false;
        if (this.#stop.signal.aborted) return;
        if (this.#again) {
          this.#again = false;
          this.poke();
          return;
        }
        this.#timer = setTimeout(() => this.poke(), POLL_MS);
        this.#timer.unref();
      });
  }

  async #pass(): Promise<void> {
    let room = MAX_IN_FLIGHT - this.#inFlight.size;
    if (room <= 0) return;
    const now = Date.now();
    const resting = [...this.#resting].filter(([, r]) => r.until > now).map(([id]) => id);
    // A target that failed is tried again with one delivery (a probe); the rest follow once one went through.
    const probing = [...this.#resting].filter(([, r]) => r.until <= now).map(([id]) => id);
    const rows = await this.repos.notify.claimDue(now, now + LEASE_MS, room, { exclude: [...resting, ...probing] });
    room -= rows.length;
    for (const target of probing) {
      if (room <= 0 || this.#probes.has(target)) continue;
      const [probe] = await this.repos.notify.claimDue(now, now + LEASE_MS, 1, { target });
      if (!probe) continue;
      this.#probes.add(target);
      rows.push(probe);
      room--;
    }
    for (const row of rows) {
      const sending = this.#send(row)
        .catch((error: unknown) => this.log.error(`notify: delivery ${row.delivery ?? deliveryId(row.uuid, row.target_id)} failed unexpectedly`, error))
        .finally(() => {
          this.#inFlight.delete(row.id);
          const probed = this.#probes.delete(row.target_id);
          // A slot came free (or a probe went through): anything else due goes now rather than at the next poll.
          if (room <= 0 || (probed && !this.#resting.has(row.target_id))) this.poke();
        });
      this.#inFlight.set(row.id, sending);
    }
  }

  async #send(row: ClaimedDelivery): Promise<void> {
    const target = await this.target(row.target_id);
    if (!target) return; // removed meanwhile: its rows went with it
    // Queued before migration 015, a delivery kept the id it was first sent with.
    const delivery = row.delivery ?? deliveryId(row.uuid, row.target_id);
    const payload = NotifyBody.parse({ ...eventBody(JSON.parse(row.payload), target.include_env_values === 1), delivery });
    const attempt = await post(target, payload, this.#stop.signal);
    if (attempt.ok) {
      const was = this.#resting.get(row.target_id);
      // One line when a failing receiver takes deliveries again (and one when it started failing, below): not one a retry.
      if (was) this.log.warn(`notify: receiver "${target.name}" takes deliveries again (after ${was.failures} failed wave${was.failures === 1 ? "" : "s"})`);
      this.#resting.delete(row.target_id);
      await this.repos.notify.delivered(row.id, row.event_id);
      // Its state, for `spool notify list` and `spool doctor` (on every server, and after a restart).
      await this.repos.notify.targetDelivered(row.target_id, Date.now());
      return;
    }
    const now = Date.now();
    // Stopping is not the receiver's failing; anything else is, from its first failure since it last took one.
    if (!this.#stop.signal.aborted) await this.repos.notify.targetFailed(row.target_id, now, attempt.error ?? "failed");
    const rest = this.#resting.get(row.target_id);
    // One wave of attempts (those claimed together) is one failure of the target.
    if (!this.#stop.signal.aborted && (!rest || now >= rest.until)) {
      const failures = (rest?.failures ?? 0) + 1;
      if (!rest)
        this.log.warn(
          `notify: receiver "${target.name}" is failing (${attempt.error}); its deliveries are kept and retried with backoff — spool notify list shows its state`,
        );
      this.#resting.set(row.target_id, { failures, until: now + backoff(failures) });
    }
    if (now - row.created_at >= RETRY_FOR_MS) {
      await this.repos.notify.delivered(row.id, row.event_id);
      this.log.error(`notify: gave up on delivery ${delivery} (${row.event}) to "${target.name}" after ${row.attempts} attempts: ${attempt.error}`);
      return;
    }
    // Stopping is not the receiver's fault: the next server to start tries it at once.
    const nextAt = this.#stop.signal.aborted ? now : now + backoff(row.attempts);
    await this.repos.notify.retryLater(row.id, nextAt, attempt.error ?? "failed");
    // Each retry is a detail: the receiver's starting to fail and its recovery are the warnings.
    this.log.debug(
      `notify: delivery ${delivery} (${row.event}) to "${target.name}" failed (${attempt.error}); attempt ${row.attempts + 1} in ${nextAt - now} ms`,
    );
  }

  /** Stops: attempts in flight are cut short and released for the next start, before the store closes. */
  async stop(): Promise<void> {
    this.#stop.abort();
    if (this.#timer) clearTimeout(this.#timer);
    await Promise.allSettled([...this.#inFlight.values()]);
  }
}
