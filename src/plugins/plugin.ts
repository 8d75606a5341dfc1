import type { z } from "zod";
import type { SpoolConfig } from "../config/config.js";
import type { FilterName, FilterValues, HookName, HookPayloads } from "../core/hooks.js";
import type { Core } from "../core/index.js";
import type { ProducerDefinition } from "../core/producers/registry.js";
import type { Logger } from "../logger.js";
import type { ServerConnection } from "../rpc/connection.js";
import type { NotificationDefinition } from "../rpc/method.js";
import type { MethodRegistry } from "../rpc/registry.js";
import type { Transport } from "../rpc/transport.js";
import type { SpoolMethod } from "./define-method.js";
import type { ServiceKey, Services } from "./services.js";

export interface SchemeDefinition {
  /** The URI scheme of entry paths (`log`, `sh`, …). */
  name: string;
  description: string;
  /** Whether bodies of this scheme are streamed chunks (data channels) or written whole. */
  streamed: boolean;
}

/** What a plugin's setup() receives. Registration methods throw once the server has started. */
export interface App extends Services {
  readonly plugin: string;
  /** The lifecycle core: producers, runs, runners, watchers, and the repositories (never the database handle). */
  readonly core: Core;
  readonly config: SpoolConfig;
  readonly log: Logger;
  /** Registers a method defined with `defineMethod` (the built-in ones are in src/features): its handler gets the core and the services on its context. */
  method<P extends z.ZodType, R extends z.ZodType>(def: SpoolMethod<P, R>): void;
  notification<P extends z.ZodType>(def: NotificationDefinition<P>): void;
  on<H extends HookName>(hook: H, handler: (payload: HookPayloads[H]) => void | Promise<void>): void;
  filter<F extends FilterName>(name: F, fn: (value: FilterValues[F]) => FilterValues[F] | Promise<FilterValues[F]>, priority?: number): void;
  scheme(def: SchemeDefinition): void;
  /** Registers a producer (a tool whose accepted proposals stream into data channels) and its channel scheme. */
  producer(def: ProducerDefinition): void;
  /** Shares a service with plugins that declare this one as a dependency (and with every handler). */
  provide<T>(key: ServiceKey<T>, value: T): void;
  // Runtime facilities, usable during setup and afterwards.
  emit<H extends HookName>(hook: H, payload: HookPayloads[H]): Promise<void>;
  applyFilter<F extends FilterName>(name: F, value: FilterValues[F]): Promise<FilterValues[F]>;
  notifyProject(projectId: number, method: string, params: unknown): void;
  connections(): Iterable<ServerConnection>;
  /** Opens a client connection to this server inside the process (what the embedded runner uses). */
  connectInProcess(): { transport: Transport; connectionId: string };
  schemes(): ReadonlyMap<string, SchemeDefinition & { plugin: string }>;
  /** Every registered method and notification (for discovery and docs). */
  registry(): MethodRegistry;
}

export interface Plugin {
  readonly name: string;
  readonly dependencies: readonly string[];
  readonly setup: (app: App) => void | Promise<void>;
}

/** A plugin is a named setup function with declared dependencies. */
export function definePlugin(def: { name: string; dependencies?: readonly string[]; setup: (app: App) => void | Promise<void> }): Plugin {
  if (!/^[a-z][a-z0-9-]*(\/[a-z0-9-]+)?$/.test(def.name)) {
    throw new Error(`Plugin name "${def.name}" must be lowercase letters, digits and dashes`);
  }
  return { name: def.name, dependencies: def.dependencies ?? [], setup: def.setup };
}

export function isPlugin(value: unknown): value is Plugin {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Plugin).name === "string" &&
    typeof (value as Plugin).setup === "function" &&
    Array.isArray((value as Plugin).dependencies)
  );
}
