import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { SpoolConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { RpcHost } from "../rpc/rpc-host.js";
import { createMemoryTransportPair } from "../rpc/transport.js";
import type { Store } from "../store/database.js";
import { FILTER_NAMES, HOOK_NAMES, type FilterName, type FilterValues, type HookName, type HookPayloads } from "./hooks.js";
import { isPlugin, type App, type Plugin, type SchemeDefinition } from "./plugin.js";

type AnyHandler = (payload: never) => void | Promise<void>;
type AnyFilter = { fn: (value: never) => unknown; priority: number; order: number; plugin: string };

/** Loads plugins in dependency order, gives each its App, and runs hooks and filters. */
export class PluginHost {
  readonly #hooks = new Map<HookName, { plugin: string; handler: AnyHandler }[]>();
  readonly #filters = new Map<FilterName, AnyFilter[]>();
  readonly #schemes = new Map<string, SchemeDefinition & { plugin: string }>();
  readonly #services = new Map<string, { plugin: string; value: unknown }>();
  readonly #loaded: string[] = [];
  #started = false;
  #filterOrder = 0;

  constructor(
    private readonly rpc: RpcHost,
    private readonly store: Store,
    private readonly config: SpoolConfig,
    private readonly log: Logger,
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

  #appFor(plugin: Plugin): App {
    const assertOpen = (what: string) => {
      if (this.#started) {
        throw new Error(`Plugin "${plugin.name}" cannot register ${what} after the server has started; do it in setup()`);
      }
    };
    const app: App = {
      plugin: plugin.name,
      store: this.store,
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
      provide: (key, value) => {
        assertOpen(`service "${key}"`);
        const existing = this.#services.get(key);
        if (existing) throw new Error(`Service "${key}" of plugin "${plugin.name}" is already provided by plugin "${existing.plugin}"`);
        this.#services.set(key, { plugin: plugin.name, value });
      },
      use: <T>(key: string): T => {
        const service = this.#services.get(key);
        if (!service) {
          throw new Error(`Plugin "${plugin.name}" uses service "${key}", which no loaded plugin provides; add its plugin to "dependencies"`);
        }
        return service.value as T;
      },
      emit: (hook, payload) => this.emit(hook, payload),
      applyFilter: (name, value) => this.applyFilter(name, value),
      notifyProject: (projectId, method, params) => this.rpc.notifyProject(projectId, method, params),
      connections: () => this.rpc.connections,
      connectInProcess: () => {
        const [serverSide, clientSide] = createMemoryTransportPair();
        const connection = this.rpc.accept(serverSide);
        return { transport: clientSide, connectionId: connection.id };
      },
      schemes: () => this.#schemes,
      registry: () => this.rpc.registry,
    };
    return app;
  }
}

/** Loads an external plugin from a path (absolute, or relative to `base`) or a package name. */
export async function importPlugin(spec: string, base: string): Promise<Plugin> {
  const looksLikePath = spec.startsWith(".") || spec.startsWith("/") || isAbsolute(spec);
  const target = looksLikePath ? pathToFileURL(resolve(base, spec)).href : spec;
  let mod: Record<string, unknown>;
  try {
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
