import type { z } from "zod";
import type { Bus } from "../cluster/bus.js";
import type { SpoolConfig } from "../config/config.js";
import type { Logger } from "../logger.js";
import type { ResolvedChannel, Resolver } from "../protocol/common.js";
import type { RunnerRefValue } from "../protocol/pool-keys.js";
import type { PrincipalRef, TransportKind } from "../protocol/roles.js";
import type { SandboxModeName } from "../protocol/sandbox.js";
import type { Repositories } from "../store/repositories.js";
import type { FilterName, FilterValues, HookName, HookPayloads } from "./hooks.js";
import type { CoreObserver } from "./observer.js";

/** What the core needs from the server around it (wired once at start-up). */
export interface CoreDeps {
  repos: Repositories;
  config: SpoolConfig;
  log: Logger;
  /** Tells every connection of the project, on this server and the others sharing its database. */
  notifyProject(projectId: number, method: string, params: unknown): void;
  /** Tells the project's connections on this server only (what another server announced). */
  notifyLocal(projectId: number, method: string, params: unknown): void;
  /** How this server talks to the others sharing its database. */
  bus: Bus;
  emit<H extends HookName>(hook: H, payload: HookPayloads[H]): Promise<void>;
  applyFilter<F extends FilterName>(name: F, value: FilterValues[F]): Promise<FilterValues[F]>;
  /** The server's metrics and traces (src/ops), told of each step of a producer's life; none: nothing is measured. */
  observer?: CoreObserver | undefined;
}

export interface ProposalInput {
  tool: string;
  command: string;
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  timeout_ms?: number | undefined;
  /** Run it under a pseudo-terminal of this size. */
  tty?: { cols: number; rows: number } | undefined;
  /** Long-running work started in the background: its time limit is `backgroundTimeoutMs`, not `commandTimeoutMs`. */
  background?: boolean | undefined;
  /** The sandbox mode asked for (proposal/create's `sandbox`); default: the configured one. The model's tools never set it. */
  sandbox?: SandboxModeName | undefined;
  /** The runner (or pool) it is proposed for (shown before the decision; an accept naming none uses it, one naming another is refused). */
  runner?: RunnerRefValue | undefined;
  /** Network allowlist: hosts asked for beyond the project's list (shown before the decision). */
  allow_hosts?: string[] | undefined;
  proposedBy: string;
  /** How the proposing connection reached the server, as the server verified it (none: the model's own proposal). */
  transport?: TransportKind | undefined;
  /** The caller's W3C trace context (`traceparent`), which the proposal's trace continues. */
  traceparent?: string | undefined;
  /** More attributes for the log entry (the agent loop records its tool call here). */
  extra?: Record<string, unknown>;
}

export interface ProducerTarget {
  run: string;
  path: string;
}

export interface FinishResult {
  path: string;
  status: number;
  changed: boolean;
  channels: { channel: number; path: string; status: number; bytes: number; lines: number }[];
}

export interface AcceptResult {
  path: string;
  status: number;
  /** The runner that took it ("self": the accepting connection); null while it waits in its pool's queue. */
  runner: string | null;
  channels: z.output<typeof ResolvedChannel>[];
  /** Accepted while no runner of its pool was free: the queue it waits in, and its place there. */
  queued?: { pool: string; position: number };
  /** For runner "self": the token that lets a later connection of the accepting client take the producer back. */
  resumeToken?: string;
  /** The "always allow" rule stored with this accept (`always`). */
  rule?: number;
}

export type ResolverOut = z.output<typeof Resolver>;

/** An accept another server passes on to the one its runner is attached to. */
export interface ForwardedAccept {
  /** Who accepts (a client's principal, or the principal that set the rule): checked again where it is taken. */
  acceptor?: PrincipalRef | undefined;
  runner?: string | undefined;
  reason?: string | undefined;
  always?: string | undefined;
  resolver: ResolverOut;
  resolvedBy: string;
  /** The facts revision the person was shown, compared again where it is taken. */
  facts?: number | undefined;
}

export interface ClaimResult {
  path: string;
  status: number;
  channels: { channel: number; path: string; status: number; lastSeq: number }[];
}
