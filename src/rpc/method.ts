import type { z } from "zod";
import type { NotificationDescriptor, RequestDescriptor } from "../protocol/define.js";
import type { Role } from "../protocol/roles.js";
import type { ConnectionContext } from "./connection-context.js";
import type { ReplyParts } from "./reply-bytes.js";

export type { MethodAccess } from "../protocol/define.js";

export interface MethodContext extends ConnectionContext {
  /** Aborted when the connection closes or the server shuts down. */
  signal: AbortSignal;
  /**
   * For a `pipelined` method: says its work is queued, in order, where it will be done (a group commit);
   * the next call with the same order key may start from then on. Calling it is optional; later calls are a no-op.
   */
  admit?: () => void;
  /** For a method with a `bytes` field: the Buffer an in-process caller passed in that field (see MethodDefinition.bytes). */
  bytes?: Buffer;
  /**
   * Set by the RPC host: a string field of the result sent from bytes the handler holds (a large body, not
   * made into a string), and work to run once the message carrying the reply has been handed to the connection.
   */
  reply?: ReplyParts;
}

/** A method as the server runs it: the protocol's request descriptor (name, description, params, result, access) and how to run it. */
export interface MethodDefinition<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType, C extends MethodContext = MethodContext>
  extends Omit<RequestDescriptor<string, P, R>, "role"> {
  /** The least role a caller needs; a plugin's method that declares none needs `admin`. */
  role?: Role;
  /**
   * Ordered calls run in arrival order per connection. `true` orders the call
   * against every other ordered call of the connection; a function gives it
   * an order key instead: calls wait only for earlier calls whose key is the
   * same, an ancestor or a descendant (keys are paths joined by ORDER_SEP), so
   * two channels stream side by side while a producer's finish still waits
   * for its channels.
   */
  ordered?: boolean | ((params: z.output<P>) => string);
  /**
   * An ordered call that queues its work in order (appends into the group commit): the next pipelined call
   * with the same key starts once this one calls `ctx.admit()`, not once it has finished, so the chunks a
   * producer has in flight on one channel share a commit. Calls with an ancestor or descendant key (a
   * producer's finish) still wait for it to finish.
   */
  pipelined?: boolean;
  /**
   * The name of a string param that an in-process caller (a transport's `sendValue`: the embedded runner)
   * may fill with a Buffer instead: the params are then validated with the empty string in its place and
   * the handler gets the Buffer as `ctx.bytes`, with no text encoding in between. Over JSON a Buffer
   * cannot arrive, so other callers are unaffected.
   */
  bytes?: string;
  /**
   * A fast check for the method's common params shape, allocating nothing: the params themselves when they are
   * certainly valid as `params` would parse them (same values; its copy is not needed), else undefined, and the
   * schema decides (its errors for bad input). For the hottest calls (`stream`: one per chunk).
   */
  quickParams?: (params: unknown) => z.output<P> | undefined;
  /**
   * A fast check of the handler's result: true only when it is valid and already what `result` would parse it to
   * (the same keys, in the schema's order, nothing else), so it is sent as it is (the same JSON); else the schema checks it.
   */
  quickResult?: (result: unknown) => boolean;
  handler: (params: z.output<P>, ctx: C) => Promise<z.input<R>> | z.input<R>;
}

/** A notification as the registry keeps it: the protocol's descriptor (src/protocol/notifications.ts for the built-in ones). */
export type NotificationDefinition<P extends z.ZodType = z.ZodType> = NotificationDescriptor<string, P>;

/** Separates the levels of an order key: `run\u0000path` is the producer, `run\u0000path\u0001channel` one channel. */
export const ORDER_SEP = "\u0001";

/** One definition per RPC method: the schema drives validation, types and discovery. */
export function defineMethod<P extends z.ZodType, R extends z.ZodType, C extends MethodContext = MethodContext>(
  def: MethodDefinition<P, R, C>,
): MethodDefinition<P, R, C> {
  return def;
}

export function defineNotification<P extends z.ZodType>(def: NotificationDefinition<P>): NotificationDefinition<P> {
  return def;
}

export type ParamsOf<M> = M extends MethodDefinition<infer P, z.ZodType, never> ? z.input<P> : never;
export type ResultOf<M> = M extends MethodDefinition<z.ZodType, infer R, never> ? z.output<R> : never;
