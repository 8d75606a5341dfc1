import type { ModelProvider } from "../model/provider.js";

export interface ModelTarget {
  alias: string;
  model: string;
  provider: ModelProvider;
  /** Its context window once known (config, model list, table); null when nothing says; undefined before the first look. */
  contextTokens?: number | null;
}
