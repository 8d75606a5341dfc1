// The plugin API, published as `spool/plugin`: `import { definePlugin, defineMethod } from "spool/plugin"`.
// It loads only what a plugin module needs at import time (a few small modules); the server hands the rest to setup(app).

import type { ModelProviders } from "./agent/providers.js";
import { type ServiceKey, serviceKey } from "./plugins/services.js";

export { AGENT_LOOP, type AgentLoop } from "./agent/service.js";
export type { FilterName, FilterValues, HookName, HookPayloads } from "./core/hooks.js";
export type { ProducerDefinition } from "./core/producers/registry.js";
export { ENTRY, RUN } from "./core/status.js";
export type { ChatMessage, ChatOptions, ChatRequest, ChatResponse, ModelProvider, ToolCall, ToolSpec } from "./model/provider.js";
export { defineMethod, type HandlerContext, type SpoolMethod } from "./plugins/define-method.js";
export { type App, definePlugin, isPlugin, type Plugin, type SchemeDefinition } from "./plugins/plugin.js";
export { type ServiceKey, type Services, serviceKey } from "./plugins/services.js";
export type { ProjectRef } from "./rpc/connection-context.js";
export { ERRORS, type ErrorName, SpoolError } from "./rpc/errors.js";
export type { ModelProviders };

/**
 * The model provider registry the built-in agent plugin provides: `app.use(MODEL_PROVIDERS).register(…)`.
 * Declared here by its name (services match keys by name) so that importing spool/plugin does not load the agent loop.
 */
export const MODEL_PROVIDERS: ServiceKey<ModelProviders> = serviceKey("model-providers");
