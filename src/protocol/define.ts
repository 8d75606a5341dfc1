import type { z } from "zod";
import type { Role } from "./roles.js";

/** Access a method needs: `none` works before `initialize` (ping, discovery). */
export type MethodAccess = "none" | "initialized";

/**
 * One request as both ends see it: its name, what it does, its params (strict: unknown fields are refused)
 * and its result. The server binds a handler to it; the client, the docs and `rpc.discover` read it.
 */
export interface RequestDescriptor<N extends string = string, P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  name: N;
  description: string;
  params: P;
  result: R;
  access?: MethodAccess;
  /** The least role a caller needs (src/protocol/roles.ts); a caller below it gets FORBIDDEN and nothing changes. */
  role: Role;
  /**
   * Set where a caller below `person` may act only on runs its own principal created (the `run` param):
   * an agent prompts, proposes, sends input to, cancels and aborts in its own runs, a person in every run.
   */
  ownRuns?: boolean;
  /**
   * The role a refusal names when it depends on what the call asks (run/resolve: accepting needs person, withdrawing
   * agent); absent: `role`. Only for a caller below `role`: it names the least role that may do what was asked.
   */
  refusalRole?: (params: unknown) => Role;
}

/** One notification (or, with `reply`, a server → client request): its name, direction, params and description. */
export interface NotificationDescriptor<N extends string = string, P extends z.ZodType = z.ZodType, R extends z.ZodType | undefined = z.ZodType | undefined> {
  name: N;
  description: string;
  /** `server` notifications go server → client; `client` ones are sent by clients. */
  direction: "server" | "client";
  params: P;
  /** Set for a server → client *request*: the reply the client must send. */
  reply?: R;
}

export function request<const N extends string, P extends z.ZodType, R extends z.ZodType>(descriptor: RequestDescriptor<N, P, R>): RequestDescriptor<N, P, R> {
  return descriptor;
}

export function notification<const N extends string, P extends z.ZodType, R extends z.ZodType | undefined = undefined>(
  descriptor: NotificationDescriptor<N, P, R>,
): NotificationDescriptor<N, P, R> {
  return descriptor;
}

/** A record of descriptors keyed by their names. */
export function byName<const D extends readonly { name: string }[]>(list: D): { [K in D[number] as K["name"]]: K } {
  return Object.fromEntries(list.map((d) => [d.name, d])) as { [K in D[number] as K["name"]]: K };
}
