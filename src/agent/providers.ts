import type { ModelConfig } from "../config/config.js";
import type { ModelProvider } from "../model/provider.js";
import { serviceKey } from "../plugins/services.js";

/** Provider factories by the prefix of SPOOL_MODEL_<alias> values; another plugin can add its own. */
export class ModelProviders {
  readonly #factories = new Map<string, (model: ModelConfig) => ModelProvider>();

  register(prefix: string, factory: (model: ModelConfig) => ModelProvider): void {
    this.#factories.set(prefix, factory);
  }

  has(prefix: string): boolean {
    return this.#factories.has(prefix);
  }

  create(model: ModelConfig): ModelProvider {
    const factory = this.#factories.get(model.provider);
    if (!factory) throw new Error(`No provider "${model.provider}" for model alias "${model.alias}"`);
    return factory(model);
  }
}

/** The service under which the agent plugin shares its provider factories, so another plugin can register one. */
export const MODEL_PROVIDERS = serviceKey<ModelProviders>("model-providers");

/**
 * A provider whose module (and SDK) is loaded on its first call: a server with no model of that provider never
 * loads its SDK.
 */
export class LazyProvider implements ModelProvider {
  #real: Promise<ModelProvider> | undefined;

  constructor(
    readonly name: string,
    private readonly load: () => Promise<ModelProvider>,
  ) {}

  #provider(): Promise<ModelProvider> {
    this.#real ??= this.load();
    return this.#real;
  }

  async chat(...args: Parameters<ModelProvider["chat"]>): ReturnType<ModelProvider["chat"]> {
    return (await this.#provider()).chat(...args);
  }

  async contextWindow(model: string, signal: AbortSignal): Promise<number | undefined> {
    return (await this.#provider()).contextWindow?.(model, signal);
  }
}
