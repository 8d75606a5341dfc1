import type { z } from "zod";
import type { Core } from "../core/index.js";
import { defineMethod as defineRpcMethod, type MethodContext, type MethodDefinition } from "../rpc/method.js";
import type { Services } from "./services.js";

/** What every Spool handler gets: the connection's context, the core, and the plugins' services. */
export interface HandlerContext extends MethodContext {
  core: Core;
  services: Services;
}

export type SpoolMethod<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> = MethodDefinition<P, R, HandlerContext>;

/** One RPC method as a static definition: name, strict params schema, result schema, description, handler. */
export function defineMethod<P extends z.ZodType, R extends z.ZodType>(def: SpoolMethod<P, R>): SpoolMethod<P, R> {
  return defineRpcMethod(def);
}
