import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { SpoolConfig } from "../config/config.js";
import { FILTER_NAMES, type FilterName, type FilterValues, HOOK_NAMES, type HookName, type HookPayloads } from "../core/hooks.js";
import type { Core } from "../core/index.js";
import type { Logger } from "../logger.js";
import type { RpcHost } from "../rpc/rpc-host.js";
import type { Transport } from "../rpc/transport.js";
import { type App, isPlugin, type Plugin, type SchemeDefinition } from "./plugin.js";
import type { ServiceKey, Services } from "./services.js";

type AnyHandler = (payload: never) => void | Promise<void>;
type AnyFilter = { fn: (value: never) => unknown; priority: number; order: number; plugin: string };

/** Loads plugins in dependency order, gives each its App, and runs hooks and filters. */
export class PluginHost implements Services {
  readonly #hooks = new Map<HookName, { plugin: string; handler: AnyHandler }[]>();
  readonly #filters = new Map<FilterName, AnyFilter[]>();
  readonly #schemes = new Map<string, SchemeDefinition & { plugin: string }>();
  readonly #services = new Map<string, { plugin: string; value: unknown }>();
  readonly #loaded: string[] = [];
  #started = false;
  #filterOrder = 0;

  constructor(
    private readonly rpc: RpcHost,
    private readonly core: Core,
    private readonly config: SpoolConfig,
    private readonly log: Logger,
    private readonly openInProcess: () => { transport: Transport; connectionId: string },
    /** Tells every connection of a project, on every server sharing the database. */
    private readonly announce: (projectId: number, method: string, params: unknown) => void = (projectId, method, params) =>
      rpc.notifyProject(projectId, method, params),
  ) {}

  get loaded(): readonly string[] {
    return this.#loaded;
  }

  /** Sets up every plugin, dependencies first. */
  async load(plugins: readonly Plugin[]): Promise<void> {
    if (this.#started) throw new Error("Plugins cannot be loaded after the server has started");
    const byName = new Map<string, Plugin>();
    for (const plugin of plugins) {
      if (byName.has(plugin.name)) throw new Error(`Plugin "${plugin.name}" is registered twice`);
      byName.set(plugin.name, plugin);
    }
    const ordered: Plugin[] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (plugin: Plugin, chain: string[]) => {
      if (state.get(plugin.name) === "done") return;
      if (state.get(plugin.name) === "visiting") {
        throw new Error(`Plugin dependency cycle: ${[...chain, plugin.name].join(" -> ")}`);
      }
      state.set(plugin.name, "visiting");
      for (const dep of plugin.dependencies) {
        const target = byName.get(dep);
        if (!target) throw new Error(`Plugin "${plugin.name}" depends on "${dep}", which is not registered`);
        visit(target, [...chain, plugin.name]);
      }
      state.set(plugin.name, "done");
      ordered.push(plugin);
    };
    for (const plugin of plugins) visit(plugin, []);
    for (const plugin of ordered) {
      await plugin.setup(this.#appFor(plugin));
      this.#loaded.push(plugin.name);
    }
  }

  /** After this, every registration call fails. */
  markStarted(): void {
    this.#started = true;
  }

  async emit<H extends HookName>(hook: H, payload: HookPayloads[H]): Promise<void> {
    for (const { plugin, handler } of this.#hooks.get(hook) ?? []) {
      try {
        await (handler as (p: HookPayloads[H]) => unknown)(payload);
      } catch (error) {
        this.log.error(`hook ${hook} of plugin ${plugin} failed`, error);
      }
    }
  }

  async applyFilter<F extends FilterName>(name: F, value: FilterValues[F]): Promise<FilterValues[F]> {
    let current = value;
    for (const entry of this.#filters.get(name) ?? []) {
      current = (await (entry.fn as (v: FilterValues[F]) => unknown)(current)) as FilterValues[F];
    }
    return current;
  }

  schemes(): ReadonlyMap<string, SchemeDefinition & { plugin: string }> {
    return this.#schemes;
  }

  use<T>(key: ServiceKey<T>): T {
    const service = this.#services.get(key.name);
    if (!service) throw new Error(`No loaded plugin provides service "${key.name}"; add its plugin to "dependencies"`);
    return service.value as T;
  }

  find<T>(key: ServiceKey<T>): T | undefined {
    return this.#services.get(key.name)?.value as T | undefined;
  }

  #appFor(plugin: Plugin): App {
    const assertOpen = (what: string) => {
      if (this.#started) {
        throw new Error(`Plugin "${plugin.name}" cannot register ${what} after the server has started; do it in setup()`);
      }
    };
    const app: App = {
      plugin: plugin.name,
      core: this.core,
      config: this.config,
      log: this.log,
      method: (def) => {
        assertOpen(`method "${def.name}"`);
        this.rpc.registry.addMethod(def as never, plugin.name);
      },
      notification: (def) => {
        assertOpen(`notification "${def.name}"`);
        this.rpc.registry.addNotification(def as never, plugin.name);
      },
      on: (hook, handler) => {
        assertOpen(`a "${hook}" hook`);
        if (!HOOK_NAMES.includes(hook)) {
          throw new Error(`Plugin "${plugin.name}" registered unknown hook "${String(hook)}"; known hooks: ${HOOK_NAMES.join(", ")}`);
        }
        const list = this.#hooks.get(hook) ?? [];
        list.push({ plugin: plugin.name, handler: handler as AnyHandler });
        this.#hooks.set(hook, list);
      },
      filter: (name, fn, priority = 100) => {
        assertOpen(`a "${name}" filter`);
        if (!FILTER_NAMES.includes(name)) {
          throw new Error(`Plugin "${plugin.name}" registered unknown filter "${String(name)}"; known filters: ${FILTER_NAMES.join(", ")}`);
        }
        const list = this.#filters.get(name) ?? [];
        list.push({ fn: fn as AnyFilter["fn"], priority, order: this.#filterOrder++, plugin: plugin.name });
        list.sort((a, b) => a.priority - b.priority || a.order - b.order);
        this.#filters.set(name, list);
      },
      scheme: (def) => {
        assertOpen(`scheme "${def.name}"`);
        if (!/^[a-z][a-z0-9+.-]*$/.test(def.name)) throw new Error(`Scheme name "${def.name}" is not a valid URI scheme`);
        const existing = this.#schemes.get(def.name);
        if (existing) throw new Error(`Scheme "${def.name}" of plugin "${plugin.name}" is already registered by plugin "${existing.plugin}"`);
        this.#schemes.set(def.name, { ...def, plugin: plugin.name });
      },
      producer: (def) => {
        assertOpen(`producer "${def.tool}"`);
        this.core.producers.register(def);
        app.scheme({ name: def.tool, description: `Data channels of the ${def.tool} producer: ${def.description}`, streamed: true });
      },
      provide: (key, value) => {
        assertOpen(`service "${key.name}"`);
        const existing = this.#services.get(key.name);
        if (existing) throw new Error(`Service "${key.name}" of plugin "${plugin.name}" is already provided by plugin "${existing.plugin}"`);
        this.#services.set(key.name, { plugin: plugin.name, value });
      },
      use: <T>(key: ServiceKey<T>): T => {
        const service = this.#services.get(key.name);
        if (!service) {
          throw new Error(`Plugin "${plugin.name}" uses service "${key.name}", which no loaded plugin provides; add its plugin to "dependencies"`);
        }
        return service.value as T;
      },
      find: (key) => this.find(key),
      emit: (hook, payload) => this.emit(hook, payload),
      applyFilter: (name, value) => this.applyFilter(name, value),
      notifyProject: (projectId, method, params) => this.announce(projectId, method, params),
      connections: () => this.rpc.connections,
      connectInProcess: () => this.openInProcess(),
      schemes: () => this.#schemes,
      registry: () => this.rpc.registry,
    };
    return app;
  }
}

let typeScriptLoader: Promise<unknown> | null = null;

/**
 * A plugin written in TypeScript needs tsx's loader. Running from sources (bin/spool.js through tsx, vitest) it is
 * there already; running from the compiled dist/ it is registered on the first such plugin, and only then.
 */
function loadTypeScript(target: string): Promise<unknown> | null {
  if (!import.meta.url.endsWith(".js") || !/\.[cm]?tsx?$/.test(target)) return null;
  // No tsconfig.json: tsx would look for one from the working directory (a project a command may write), whose
  // `paths` could map a package Spool imports to a file of its own.
  typeScriptLoader ??= import("tsx/esm/api").then((tsx) => tsx.register({ tsconfig: false }));
  return typeScriptLoader;
}

/** Loads an external plugin from a path (absolute, or relative to `base`) or a package name. */
export async function importPlugin(spec: string, base: string): Promise<Plugin> {
  const looksLikePath = spec.startsWith(".") || spec.startsWith("/") || isAbsolute(spec);
  const target = looksLikePath ? pathToFileURL(resolve(base, spec)).href : spec;
  let mod: Record<string, unknown>;
  try {
    await loadTypeScript(target);
    mod = (await import(target)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`Cannot load plugin "${spec}": ${error instanceof Error ? error.message : String(error)}`);
  }
  const candidate = mod.default ?? mod.plugin;
  if (!isPlugin(candidate)) {
    throw new Error(`Plugin "${spec}" must export a plugin made with definePlugin() as its default export`);
  }
  return candidate;
}
