import { randomBytes, randomUUID } from "node:crypto";
import type { z } from "zod";
import { NOTIFY_EVENTS, type NotifyTargetView, type notifyAdd } from "../../../protocol/methods/notify.js";
import type { NotifyBody } from "../../../protocol/notify-body.js";
import { notifyText } from "../../../protocol/notify-body.js";
import type { PrincipalRef } from "../../../protocol/roles.js";
import { factsOf } from "../../../protocol/views.js";
import type { ProjectRef } from "../../../rpc/connection-context.js";
import { conflict, notFound } from "../../../rpc/errors.js";
import { UniqueViolation } from "../../../store/repositories.js";
import type { EntryRow, NotifyTargetRow, RunRow } from "../../../store/schema.js";
import type { CoreDeps } from "../../deps.js";
import { covers, requireCovered } from "../../scope.js";
import type { ActivityWrites } from "../writes.js";
import { type Attempt, OutboxSender, post } from "./outbox.js";
import type { NotifyFact, StoredEvent } from "./payload.js";

/** How long the list of targets an enqueue reads is kept (another server's `notify add` shows within it). */
const TARGETS_TTL_MS = 2_000;

type TargetView = z.input<typeof NotifyTargetView>;

function parseList(text: string | null): string[] | null {
  return text === null ? null : (JSON.parse(text) as string[]);
}

/**
 * Notifications: the receivers an admin added (`notify/*`), and the outbox every event of a proposal is queued
 * in (one INSERT, never waited for by the change it announces) and sent from (outbox.ts).
 */
export class Notifications {
  readonly #sender: OutboxSender;
  #targets: { rows: NotifyTargetRow[]; at: number } | null = null;
  #pageBase: string | null = null;
  #enqueues = new Set<Promise<void>>();

  constructor(
    private readonly deps: CoreDeps,
    private readonly writes: ActivityWrites,
  ) {
    this.#sender = new OutboxSender(deps.repos, deps.log, async (id) => (await this.#list()).find((t) => t.id === id) ?? deps.repos.notify.findTargetById(id));
  }

  /** The page's address on this server (http://host:port/), which links in notifications point to. */
  setPageBase(url: string): void {
    this.#pageBase = url;
  }

  start(): void {
    this.#sender.start();
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.#enqueues]);
    await this.#sender.stop();
  }

  /** Adds a receiver of `by`'s projects (a receiver of every project: an unscoped admin's alone). */
  async add(by: PrincipalRef, params: z.output<(typeof notifyAdd)["params"]>): Promise<{ secret: string; target: TargetView }> {
    requireCovered(by, "notify/add", "a receiver", params.projects ?? null);
    const secret = randomBytes(32).toString("base64url");
    const events = params.events ? NOTIFY_EVENTS.filter((e) => params.events!.includes(e)) : [...NOTIFY_EVENTS];
    try {
      const row = await this.deps.repos.notify.insertTarget({
        name: params.name,
        url: params.url,
        secret,
        events: JSON.stringify(events),
        format: params.format ?? "json",
        projects: params.projects ? JSON.stringify([...new Set(params.projects)]) : null,
        include_env_values: params.includeEnvValues ? 1 : 0,
        created_by: by.name,
        created_at: Date.now(),
      });
      this.#targets = null;
      return { secret, target: view(row, undefined) };
    } catch (error) {
      if (error instanceof UniqueViolation)
        throw conflict(`A receiver named "${params.name}" exists; remove it first or choose another name`, { name: params.name });
      throw error;
    }
  }

  /** The receivers `by` covers (a scoped admin: those told only of its projects). */
  async list(by: PrincipalRef): Promise<TargetView[]> {
    await this.writes.flush();
    const [rows, backlog] = await Promise.all([this.deps.repos.notify.listTargets(), this.deps.repos.notify.backlog()]);
    return rows.filter((row) => covers(by, parseList(row.projects))).map((row) => view(row, backlog.get(row.id)));
  }

  /** The receiver of that name `by` covers; one it does not is NOT_FOUND, as a name nobody holds. */
  async #covered(by: PrincipalRef, name: string): Promise<NotifyTargetRow> {
    const row = await this.deps.repos.notify.findTarget(name);
    if (!row || !covers(by, parseList(row.projects))) throw notFound(`Receiver "${name}"`, { name });
    return row;
  }

  async remove(by: PrincipalRef, name: string): Promise<TargetView> {
    await this.#covered(by, name);
    await this.writes.flush();
    const backlog = await this.deps.repos.notify.backlog();
    const row = await this.deps.repos.notify.deleteTarget(name);
    if (!row) throw notFound(`Receiver "${name}"`, { name });
    this.#targets = null;
    return view(row, backlog.get(row.id));
  }

  /** One signed `test` event, sent now; what the receiver answered. */
  async test(by: PrincipalRef, name: string): Promise<Attempt & { delivery: string }> {
    const row = await this.#covered(by, name);
    const facts = factsOf({ tool: "sh", command: "echo hello from spool" });
    const base: Omit<NotifyBody, "text"> = {
      event: "test",
      delivery: randomUUID(),
      at: Date.now(),
      project: "-",
      run: "-",
      path: "log://test",
      facts,
      proposedBy: null,
      decision: null,
      finished: null,
      budget: null,
      url: this.#pageBase,
    };
    const attempt = await post(row, { ...base, text: notifyText(base, facts) });
    return { ...attempt, delivery: base.delivery };
  }

  /**
   * Queues `fact` for every receiver of its event and project: one INSERT, not waited for by the caller (a
   * receiver, or the database, being slow never slows a proposal); the sender is poked once it is stored.
   */
  enqueue(project: ProjectRef, runAlias: string, log: Pick<EntryRow, "path" | "attributes">, fact: Exclude<NotifyFact, { event: "budget" }>): void {
    // Stored as what its body is made from (the sender builds it), the command cut to what a phone shows.
    this.#queue(project, fact.event, log.path, () => ({
      fact,
      project: project.name,
      run: runAlias,
      pageBase: this.#pageBase,
      path: log.path,
      attributes: boundedAttributes(log.attributes),
      at: Date.now(),
    }));
  }

  /** Queues `budget` for every receiver of it and the run's project: the run paused at `reached`, and waits for a person. */
  paused(project: ProjectRef, run: Pick<RunRow, "alias">, reached: Extract<NotifyFact, { event: "budget" }>["reached"]): void {
    const fact: NotifyFact = { event: "budget", reached };
    this.#queue(project, "budget", `run ${run.alias}`, () => ({
      fact,
      project: project.name,
      run: run.alias,
      pageBase: this.#pageBase,
      path: "",
      attributes: "{}",
      at: Date.now(),
    }));
  }

  /** `event` is made only when a receiver wants it (what most proposals skip: bounding a long command). */
  #queue(project: ProjectRef, name: NotifyFact["event"], about: string, event: () => StoredEvent): void {
    const queued = this.#enqueue(project, name, event)
      .catch((error: unknown) => this.deps.log.error(`notify: could not queue ${name} of ${about}`, { project: project.name, error }))
      .finally(() => this.#enqueues.delete(queued));
    this.#enqueues.add(queued);
  }

  async #enqueue(project: ProjectRef, name: NotifyFact["event"], event: () => StoredEvent): Promise<void> {
    const targets = (await this.#list()).filter((t) => {
      const projects = parseList(t.projects);
      return (parseList(t.events) ?? []).includes(name) && (projects === null || projects.includes(project.name));
    });
    if (targets.length === 0) return;
    const stored = event();
    // Stored once, whatever the number of receivers; each receiver's delivery id is derived when it is sent.
    await this.writes.event({
      event: { uuid: randomUUID(), event: stored.fact.event, payload: JSON.stringify(stored), created_at: stored.at },
      targets: targets.map((t) => t.id),
    });
    this.#sender.queued(targets.map((t) => t.id));
  }

  async #list(): Promise<NotifyTargetRow[]> {
    if (this.#targets && Date.now() - this.#targets.at < TARGETS_TTL_MS) return this.#targets.rows;
    const rows = await this.deps.repos.notify.listTargets();
    this.#targets = { rows, at: Date.now() };
    return rows;
  }
}

function view(row: NotifyTargetRow, backlog: { pending: number; lastError: string | null } | undefined): TargetView {
  return {
    name: row.name,
    url: redactUrl(row.url),
    events: (parseList(row.events) ?? []) as TargetView["events"],
    format: row.format,
    projects: parseList(row.projects),
    includeEnvValues: row.include_env_values === 1,
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
    pending: backlog?.pending ?? 0,
    lastError: row.failure ?? backlog?.lastError ?? null,
    deliveredAt: row.delivered_at === null ? null : Number(row.delivered_at),
    failingSince: row.failing_since === null ? null : Number(row.failing_since),
  };
}

/** Characters of a command (and of each env value) an event's stored row keeps: a body is read on a phone, not audited. */
export const NOTIFY_COMMAND_CHARS = 2048;
export const NOTIFY_ENV_VALUE_CHARS = 512;

/**
 * An entry's attributes as an outbox row keeps them: a command of up to 64 KiB cut to NOTIFY_COMMAND_CHARS, saying
 * how much was left out (the whole one is in Spool, a link away), and each env value cut likewise. Small ones (most)
 * are kept as they are, unparsed.
 */
export function boundedAttributes(text: string): string {
  if (text.length <= NOTIFY_COMMAND_CHARS + 1024) return text;
  const attributes = JSON.parse(text) as { command?: unknown; env?: Record<string, unknown> };
  const cut = (value: string, keep: number) =>
    value.length <= keep ? value : `${value.slice(0, keep)}… (${value.length - keep} more characters, left out here)`;
  if (typeof attributes.command === "string") attributes.command = cut(attributes.command, NOTIFY_COMMAND_CHARS);
  if (attributes.env && typeof attributes.env === "object")
    attributes.env = Object.fromEntries(Object.entries(attributes.env).map(([k, v]) => [k, typeof v === "string" ? cut(v, NOTIFY_ENV_VALUE_CHARS) : v]));
  return JSON.stringify(attributes);
}

/**
 * A receiver's URL as it is shown and audited: scheme, host and the path's last four characters. A Slack or ntfy
 * URL is the credential itself; the whole one stays in its row, used only to send.
 */
export function redactUrl(text: string): string {
  const url = new URL(text);
  const rest = `${url.pathname}${url.search}`;
  return `${url.protocol}//${url.host}/${rest.length > 5 ? `…${rest.slice(-4)}` : rest.slice(1)}`;
}
